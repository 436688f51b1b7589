"""The trace's reads and writes (``critsec.explorer._recording``), asked
directly on a live frame of this test: what each kind of access shows,
the texts every driver's trace then carries."""

from __future__ import annotations

import sys
import types
from typing import Any

from critsec.explorer._access import Access
from critsec.explorer._recording import Accesses


class State:
    def __init__(self) -> None:
        self.value = 0
        self.table = {"k": 1}

    @property
    def doubled(self) -> int:
        return self.value * 2


def recorder() -> tuple[Accesses, list[tuple[Any, ...]]]:
    events: list[tuple[Any, ...]] = []

    def emit(task: int, kind: str, text: str, file: str, line: int, where: str, shown: str) -> None:
        events.append((task, kind, text, where, shown, file == __file__))

    return Accesses(emit, lambda code: False), events


def test_a_read_shows_the_value_about_to_be_read_and_names_by_place() -> None:
    state, (accesses, events) = State(), recorder()
    table, frame = state.table, sys._getframe()
    accesses.before(0, frame, Access("read", "attr", "value", ("fast", "state")))
    accesses.before(1, frame, Access("read", "attr", "table", ("fast", "state")))
    accesses.before(1, frame, Access("read", "subscr", "", ("fast", "table"), ("const", "k"), "in"))
    assert events == [
        (0, "read", "State.value ➜ 0", "State.value", "0", True),
        (1, "read", "State.table ➜ {'k': 1}", "State.table", "{'k': 1}", True),
        # The dict is named after where it was first read from.
        (1, "read", "'k' in State.table ➜ True", "State.table['k']", "True", True),
    ]
    assert accesses.names.of(table) == "State.table"


def test_a_store_shows_the_value_once_there_and_is_returned_for_footprints() -> None:
    state, (accesses, events) = State(), recorder()
    table, frame = state.table, sys._getframe()
    store = Access("write", "attr", "value", ("fast", "state"))
    accesses.before(0, frame, store)
    assert events == []  # not yet stored
    state.value = 5
    done = accesses.settle()
    assert done == (store, state, 5)
    assert events == [(0, "write", "State.value = 5", "State.value", "5", True)]
    accesses.before(0, frame, store)
    assert accesses.settle(failed=True) is None and len(events) == 1  # it raised
    accesses.before(
        0, frame, Access("write", "subscr", "", ("fast", "table"), ("const", "k"), "del")
    )
    assert events[-1][1:3] == ("write", "del dict['k']") and events[-1][4] == "<deleted>"
    assert table is not None


def test_a_library_property_is_its_getters_return() -> None:
    state, (accesses, events) = State(), recorder()
    state.value = 3
    accesses.before(0, sys._getframe(), Access("read", "attr", "doubled", ("fast", "state")))
    assert events == [] and accesses.expecting is not None
    getter = types.SimpleNamespace(f_code=vars(State)["doubled"].fget.__code__)
    on_return = accesses.property_call(getter)  # type: ignore[arg-type]
    assert on_return is not None and accesses.expecting is None
    on_return(6)
    assert events == [(0, "read", "State.doubled ➜ 6", "State.doubled", "6", True)]
