"""Generator tasks that yield inside their critical section, but hold a
critsec coroutines lock across it."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import critsec

BUG = False
DESCRIPTION = "generator tasks yielding inside a critical section guarded by a coroutines lock"


def setup() -> SimpleNamespace:
    return SimpleNamespace(counter=10, lock=critsec.runtime("coroutines").lock())


def task_1(s: SimpleNamespace) -> Iterator[Any]:
    for _ in range(2):
        with (yield from s.lock):
            value = s.counter
            yield
            s.counter = value + 1


def task_2(s: SimpleNamespace) -> Iterator[Any]:
    for _ in range(2):
        with (yield from s.lock):
            value = s.counter
            yield
            s.counter = value - 1


tasks = [task_1, task_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.counter == 10)
