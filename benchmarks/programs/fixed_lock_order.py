"""Lock order done right: both transfers take lock a, then lock b."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "two transfers that take the same two locks in one global order"


def setup() -> SimpleNamespace:
    return SimpleNamespace(a=100, b=100, lock_a=threading.Lock(), lock_b=threading.Lock())


def a_to_b(s: SimpleNamespace) -> None:
    with s.lock_a, s.lock_b:
        s.a -= 10
        s.b += 10


def b_to_a(s: SimpleNamespace) -> None:
    with s.lock_a, s.lock_b:
        s.b -= 10
        s.a += 10


tasks = [a_to_b, b_to_a]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.a == 100 and s.b == 100)
