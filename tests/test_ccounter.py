"""The cooperative runtimes' counter in C (``_ccounter.Counter``) behaves
as its reference, ``_core.PlainCounter``, in Python: the same values, the
same errors with the same words, for every kind of input.

PlainCounter is kept (the threads runtime's counter is built on it), so
the two are run side by side on one table of operations.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import pytest

import critsec
from critsec.runtimes._ccounter import Counter
from critsec.runtimes._cooperative import CooperativeCounter
from critsec.runtimes._core import PlainCounter


class Big(int):
    """An int subclass: a counter holds it (isinstance int), as is."""


INPUTS: list[Any] = [0, -7, 2**100, Big(3), True, False, 1.5, "1", None, b"", 10**30 + 0.5]


def outcome(action: Callable[[], Any]) -> tuple[str, Any]:
    try:
        got = action()
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error)
    return "ok", (type(got).__name__, got)


def both(action: Callable[[Any], Any]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    return outcome(lambda: action(PlainCounter)), outcome(lambda: action(Counter))


@pytest.mark.parametrize("initial", INPUTS, ids=repr)
def test_made_with_any_initial_value_as_the_reference(initial: Any) -> None:
    python, c = both(lambda kind: kind(initial).value)
    assert python == c


@pytest.mark.parametrize("new", INPUTS, ids=repr)
def test_a_write_of_anything_as_the_reference(new: Any) -> None:
    def write(kind: type) -> Any:
        counter = kind(5)
        try:
            counter.value = new
        finally:
            kept = counter.value
        return kept

    python, c = both(write)
    assert python == c
    if python[0] != "ok":  # a refused write changes nothing
        assert PlainCounter(5).value == 5


@pytest.mark.parametrize("delta", INPUTS, ids=repr)
def test_add_of_anything_as_the_reference(delta: Any) -> None:
    def add(kind: type) -> Any:
        counter = kind(5)
        try:
            return counter.add(delta), counter.value
        except TypeError:
            assert counter.value == 5  # nothing added
            raise

    python, c = both(add)
    assert python == c


def test_the_lessons_loop_counts_every_update() -> None:
    for kind in (PlainCounter, Counter):
        counter = kind()
        for _ in range(1000):
            counter.value += 1
        assert counter.add(-1000) == 0 and counter.value == 0


def test_the_value_cannot_be_deleted_and_add_takes_one_argument() -> None:
    counter = Counter()
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del counter.value
    with pytest.raises(TypeError):
        counter.add()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Counter(1, 2)  # type: ignore[call-arg]
    assert Counter(initial=4).value == 4


def test_a_counter_keeps_no_reference_it_has_let_go() -> None:
    value = 10**40
    before = sys.getrefcount(value)
    counter = Counter(value)
    counter.value = value
    counter.value = 1
    counter.add(value)
    counter.value = 2
    del counter
    gc.collect()
    assert sys.getrefcount(value) == before


@pytest.mark.parametrize("name", ["coroutines", "asyncio"])
def test_the_cooperative_runtimes_use_it(name: str) -> None:
    counter = critsec.runtime(name).counter(3)
    assert isinstance(counter, CooperativeCounter) and isinstance(counter, Counter)
    assert repr(counter) == "<CooperativeCounter value=3>"
    with pytest.raises(AttributeError):
        counter.other = 1  # type: ignore[attr-defined]  # slots: nothing but the value
