"""A bounded buffer with two conditions on one lock: producers wait while
it is full (``not_full``), consumers while it is empty (``not_empty``),
each with ``while`` -- the textbook monitor, with two producers and one
consumer through a buffer of two slots (two, so that the tasks run one
after another also finish: the suite's sequential check)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
CAPACITY = 2
DESCRIPTION = "bounded buffer of 2: not_full/not_empty conditions on one lock, 'while' waits"


def setup() -> SimpleNamespace:
    lock = threading.Lock()
    return SimpleNamespace(
        items=[],
        got=[],
        not_full=threading.Condition(lock),
        not_empty=threading.Condition(lock),
    )


def put(s: SimpleNamespace, item: int) -> None:
    with s.not_full:
        while len(s.items) >= CAPACITY:
            s.not_full.wait()
        s.items.append(item)
        s.not_empty.notify()


def get(s: SimpleNamespace) -> int:
    with s.not_empty:
        while not s.items:
            s.not_empty.wait()
        item: int = s.items.pop(0)
        s.not_full.notify()
        return item


def producer_1(s: SimpleNamespace) -> None:
    put(s, 1)


def producer_2(s: SimpleNamespace) -> None:
    put(s, 2)


def consumer(s: SimpleNamespace) -> None:
    for _ in range(2):
        s.got.append(get(s))


tasks = [producer_1, producer_2, consumer]


def invariant(s: SimpleNamespace) -> bool:
    return sorted(s.got) == [1, 2] and not s.items
