"""A ``BoundedSemaphore(1)`` used as a mutex around a read-modify-write."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "read-modify-write guarded by a BoundedSemaphore(1)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(total=0, slots=threading.BoundedSemaphore(1))


def add_two(s: SimpleNamespace) -> None:
    for _ in range(2):
        with s.slots:
            total = s.total
            s.total = total + 1


def add_two_more(s: SimpleNamespace) -> None:
    add_two(s)


tasks = [add_two, add_two_more]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.total == 4)
