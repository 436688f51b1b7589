"""SCTBench's ``lazy01`` (CS benchmarks, Thomson, Donaldson and Betts,
TOPC 2016; SV-COMP's ``c/pthread/lazy01.c``), transcribed: one thread adds
1 to ``data`` and another adds 2, each under the lock; a third, also under
the lock, fails if it sees ``data >= 3`` -- that is, if it runs after both.
Every access is locked: the bug is an order of whole critical sections,
reached with no preemption but not in the listed order (the checker
first)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench lazy01: a locked check that fails only when it runs after both adders"


def setup() -> SimpleNamespace:
    return SimpleNamespace(data=0, lock=threading.Lock(), error=False)


def check(s: SimpleNamespace) -> None:
    with s.lock:
        if s.data >= 3:
            s.error = True


def add_1(s: SimpleNamespace) -> None:
    with s.lock:
        s.data += 1


def add_2(s: SimpleNamespace) -> None:
    with s.lock:
        s.data += 2


tasks = [check, add_1, add_2]


def invariant(s: SimpleNamespace) -> bool:
    return not s.error
