"""What an instruction reads or writes, and how values are shown: the part
of the explorer both tracing drivers share (``critsec.explorer._access``).

The analysis is checked on small functions (which offsets touch what, with
the object and key as expressions), peeking is checked never to run user
code (no property getter, no ``__getattr__``), names and reprs never to
depend on addresses. Then one lost update per driver shows that the
threads and the generator driver read the same things from the same code:
a closure variable and a subscript, which the generator trace did not show
before the analysis was shared.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

from critsec.explorer import explore
from critsec.explorer._access import (
    DELETED,
    MISSING,
    Access,
    Names,
    ShortRepr,
    analyse,
    deleted_before,
    describe_object,
    evaluate,
    is_data,
    locate,
    peek_attr,
    peek_read,
    property_code,
)

shared = 0


class Box:
    def __init__(self) -> None:
        self.n = 0
        self.items = [0]


def accesses(fn: Any) -> list[tuple[str, str, str]]:
    return [(a.kind, a.what, a.name) for a in analyse(fn.__code__).values()]


def test_analyse_sees_globals_attributes_subscripts_and_closures() -> None:
    box = Box()

    def touch(b: Box) -> None:
        global shared
        shared = b.n
        b.n += 1
        b.items[0] = box.n

    found = accesses(touch)
    assert ("write", "global", "shared") in found
    assert ("read", "attr", "n") in found
    assert ("write", "attr", "n") in found
    assert ("read", "deref", "box") in found
    assert ("write", "subscr", "") in found


def test_analyse_names_the_receiver_of_an_augmented_attribute_write() -> None:
    def bump(b: Box) -> None:
        b.n += 1

    (write,) = [a for a in analyse(bump.__code__).values() if a.kind == "write"]
    assert write == Access("write", "attr", "n", ("fast", "b"))


def test_analyse_follows_attribute_chains_and_subscript_keys() -> None:
    def read(b: Box) -> int:
        return b.items[0]

    (subscript,) = [a for a in analyse(read.__code__).values() if a.what == "subscr"]
    assert subscript.obj == ("attr", ("fast", "b"), "items")
    assert subscript.key is not None and subscript.key[0] == "const"
    assert subscript.key[1] == 0


def test_analyse_sees_membership_tests_and_deletes() -> None:
    def check_then_act(d: dict[str, Any], b: Box) -> None:
        global shared
        if "k" in d["c"]:
            del d["c"]["k"]
        if "k" not in d:
            del b.n
        del shared

    found = set(analyse(check_then_act.__code__).values())
    item = ("subscr", ("fast", "d"), ("const", "c"))
    assert Access("read", "subscr", "", item, ("const", "k"), op="in") in found
    assert Access("read", "subscr", "", ("fast", "d"), ("const", "k"), op="not in") in found
    assert Access("write", "subscr", "", item, ("const", "k"), op="del") in found
    assert Access("write", "attr", "n", ("fast", "b"), op="del") in found
    assert Access("write", "global", "shared", op="del") in found


class Picky(dict[str, int]):
    """A dict whose membership test and deletion are its own code."""

    calls = 0

    def __contains__(self, key: object) -> bool:
        Picky.calls += 1
        return False

    def __delitem__(self, key: str) -> None:
        Picky.calls += 1


def test_membership_and_deletes_are_peeked_only_on_plain_containers() -> None:
    frame = sys._getframe()
    plain, picky, items = {"k": 1}, Picky(k=1), ["k"]
    test = Access("read", "subscr", "", None, None, op="in")
    negated = Access("read", "subscr", "", None, None, op="not in")
    delete = Access("write", "subscr", "", None, None, op="del")
    assert peek_read(test, frame, (plain, "k")) is True
    assert peek_read(negated, frame, (plain, "k")) is True  # presence, whichever the test
    assert peek_read(test, frame, (plain, "x")) is False
    assert peek_read(test, frame, (picky, "k")) is MISSING
    assert peek_read(test, frame, (items, "k")) is MISSING  # membership, no place
    assert deleted_before(delete, frame, (plain, "k")) is DELETED
    assert deleted_before(delete, frame, (picky, "k")) is MISSING
    assert deleted_before(test, frame, (plain, "k")) is MISSING
    assert Picky.calls == 0
    del_attr = Access("write", "attr", "value", None, op="del")
    assert deleted_before(del_attr, frame, Touchy()) is MISSING  # a property's deleter
    assert deleted_before(Access("write", "attr", "n", None, op="del"), frame, Box()) is DELETED
    assert repr(DELETED) == "<deleted>"


class Touchy:
    """Counts every call of its property and of ``__getattr__``."""

    calls = 0

    def __init__(self) -> None:
        self.plain = 1

    @property
    def value(self) -> int:
        Touchy.calls += 1
        return 2

    def __getattr__(self, name: str) -> Any:
        Touchy.calls += 1
        return 3


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x = 1


def test_peeking_runs_no_user_code() -> None:
    touchy = Touchy()
    Touchy.calls = 0
    assert peek_attr(touchy, "plain") == 1
    assert isinstance(peek_attr(touchy, "value"), property)
    assert peek_attr(touchy, "dynamic") is MISSING
    assert Touchy.calls == 0
    assert peek_attr(Slotted(), "x") == 1
    assert peek_attr(Slotted(), "y") is MISSING
    assert property_code(peek_attr(touchy, "value"), "read") is Touchy.value.fget.__code__  # type: ignore[attr-defined]
    assert property_code(peek_attr(touchy, "value"), "write") is None
    assert property_code(1, "read") is None


def test_locate_and_peek_read_in_a_live_frame() -> None:
    box = Box()
    box.items[0] = 7
    frame = sys._getframe()
    names = Names()
    assert evaluate(("attr", ("fast", "box"), "n"), frame) == 0
    assert evaluate(("fast", "missing"), frame) is MISSING
    read = Access("read", "subscr", "", ("attr", ("fast", "box"), "items"), ("const", 0))
    obj, display, location = locate(read, frame, names)
    assert (display, location) == ("list[0]", "list[0]")
    assert peek_read(read, frame, obj) == 7
    assert locate(Access("read", "global", "shared"), frame, names) == (
        None,
        "shared",
        "global shared",
    )


def test_names_are_by_type_and_order_of_first_sight_or_by_place() -> None:
    names = Names()
    first, second, items = Box(), Box(), [1]
    assert names.of(first) == "Box"
    assert names.of(second) == "Box#2"
    assert names.of(first) == "Box"
    names.remember(items, "State.items")
    names.remember(Box(), "State.box")  # only containers are named by place
    assert names.of(items) == "State.items"
    third = Box()
    names.adopt(third, "State.box")
    names.adopt(third, "elsewhere")  # the first name stays
    assert names.of(third) == "State.box"


def test_reprs_and_descriptions_never_show_addresses() -> None:
    names = Names()
    short = ShortRepr(names)
    box = Box()
    assert short.repr(box) == "Box"
    assert short.repr([box]) == "[Box]"
    assert "0x" not in short.repr(lambda: None)
    assert "0x" not in describe_object(object())
    assert not is_data(box)  # a reference, not a value
    assert not is_data(len)
    assert is_data(3) and is_data([1])


# -- both drivers read the same things from the same code ----------------------------


class Shared:
    def __init__(self) -> None:
        self.items = [0]

    def __repr__(self) -> str:
        return f"Shared(items={self.items})"


def test_both_drivers_show_a_subscript_lost_update() -> None:
    def thread_task(s: Shared) -> None:
        v = s.items[0]
        s.items[0] = v + 1

    def generator_task(s: Shared) -> Generator[None, None, None]:
        v = s.items[0]
        yield
        s.items[0] = v + 1

    for task in (thread_task, generator_task):
        found = explore(Shared, [task, task], lambda s: s.items[0] == 2, strategy="dfs")
        assert found.failed and found.kind == "invariant"
        assert "lost update on Shared.items[0]" in found.trace, found.trace


def test_generator_trace_shows_closure_variables() -> None:
    count = 0

    def setup() -> None:
        nonlocal count
        count = 0

    def task(state: None) -> Generator[None, None, None]:
        nonlocal count
        seen = count
        yield
        count = seen + 1

    found = explore(setup, [task, task], lambda state: count == 2, strategy="dfs")
    assert found.failed
    assert "nonlocal count ➜ 0" in found.trace
    assert "lost update on nonlocal count" in found.trace


def test_both_drivers_show_a_check_then_delete_lost_update() -> None:
    def setup() -> dict[str, dict[str, int]]:
        return {"cache": {"k": 1}}

    def thread_task(state: dict[str, dict[str, int]]) -> None:
        if "k" in state["cache"]:
            del state["cache"]["k"]

    def generator_task(state: dict[str, dict[str, int]]) -> Generator[None, None, None]:
        if "k" in state["cache"]:
            yield
            del state["cache"]["k"]

    for task in (thread_task, generator_task):
        found = explore(setup, [task, task], lambda state: True, strategy="dfs")
        assert found.failed and found.kind == "exception"
        assert "lost update on dict['cache']['k']" in found.trace, found.trace
        assert "read True" in found.trace and "wrote <deleted>" in found.trace
