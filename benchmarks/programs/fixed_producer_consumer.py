"""A producer and a consumer synchronised by a bounded ``queue.Queue``:
the consumer's ``get()`` blocks until an item is there."""

from __future__ import annotations

import queue
from types import SimpleNamespace

BUG = False
DESCRIPTION = "producer/consumer through queue.Queue(maxsize=2) with blocking get"


def setup() -> SimpleNamespace:
    return SimpleNamespace(q=queue.Queue(maxsize=2), got=[])


def producer(s: SimpleNamespace) -> None:
    for item in range(2):
        s.q.put(item)


def consumer(s: SimpleNamespace) -> None:
    for _ in range(2):
        s.got.append(s.q.get())


tasks = [producer, consumer]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.got == [0, 1])
