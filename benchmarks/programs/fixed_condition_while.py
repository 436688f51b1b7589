"""A condition waited with ``while``: a woken consumer checks again."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "condition waited with 'while' (two consumers, one producer)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(items=[], got=[], cond=threading.Condition())


def producer(s: SimpleNamespace) -> None:
    for item in range(2):
        with s.cond:
            s.items.append(item)
            s.cond.notify()


def consumer(s: SimpleNamespace) -> None:
    with s.cond:
        while not s.items:
            s.cond.wait()
        s.got.append(s.items.pop(0))


def consumer_2(s: SimpleNamespace) -> None:
    consumer(s)


tasks = [producer, consumer, consumer_2]


def invariant(s: SimpleNamespace) -> bool:
    return sorted(s.got) == [0, 1]
