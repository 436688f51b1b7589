"""Wrong lock: each thread takes a lock, but not the same one."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "wrong lock: two locks protecting one variable"


def setup() -> SimpleNamespace:
    return SimpleNamespace(hits=0, lock_a=threading.Lock(), lock_b=threading.Lock())


def count_a(s: SimpleNamespace) -> None:
    with s.lock_a:
        s.hits += 1


def count_b(s: SimpleNamespace) -> None:
    with s.lock_b:
        s.hits += 1


tasks = [count_a, count_b]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.hits == 2)
