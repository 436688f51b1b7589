"""The lesson's coroutines, broken: a generator task yields between reading
and writing the counter, i.e. inside its critical section."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

BUG = True
DESCRIPTION = "generator task yielding inside its critical section (read, yield, write)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(counter=10)


def task_1(s: SimpleNamespace) -> Iterator[None]:
    for _ in range(2):
        value = s.counter
        yield
        s.counter = value + 1


def task_2(s: SimpleNamespace) -> Iterator[None]:
    for _ in range(2):
        value = s.counter
        yield
        s.counter = value - 1


tasks = [task_1, task_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.counter == 10)
