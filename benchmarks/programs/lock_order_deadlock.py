"""Lock-order deadlock: two transfers take the same two locks in opposite orders."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "lock-order deadlock: a->b and b->a transfers lock in opposite orders"


def setup() -> SimpleNamespace:
    return SimpleNamespace(a=100, b=100, lock_a=threading.Lock(), lock_b=threading.Lock())


def a_to_b(s: SimpleNamespace) -> None:
    with s.lock_a, s.lock_b:
        s.a -= 10
        s.b += 10


def b_to_a(s: SimpleNamespace) -> None:
    with s.lock_b, s.lock_a:
        s.b -= 10
        s.a += 10


tasks = [a_to_b, b_to_a]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.a + s.b == 200)
