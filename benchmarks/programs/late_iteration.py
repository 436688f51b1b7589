"""A bug hidden in one late loop iteration: the batch's last-but-one item
takes a 'fast path' that forgot the lock."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "bug in one late loop iteration: item 8 of 10 is counted without the lock"


def setup() -> SimpleNamespace:
    return SimpleNamespace(total=0, lock=threading.Lock())


def batch(s: SimpleNamespace) -> None:
    for i in range(10):
        if i == 8:
            s.total += 1  # the fast path: no lock
        else:
            with s.lock:
                s.total += 1


def single(s: SimpleNamespace) -> None:
    with s.lock:
        s.total += 1


tasks = [batch, single]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.total == 11)
