"""SCTBench's ``token_ring`` (CS benchmarks, Thomson, Donaldson and Betts,
TOPC 2016; ESBMC's ``token_ring_bad.c``), transcribed: three threads pass a
value round a ring (``x1 = (x3 + 1) % 4``, ``x2 = x1``, ``x3 = x2``), each
step atomic (ESBMC's atomic sections: one lock here) and flagged done; a
checker that finds all three done expects ``x1 == x2 == x3``. That holds
only when the three run in ring order; any other order of the (atomic)
steps breaks it -- no preemption needed, only another order."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench token_ring: 3 atomic ring steps, a checker expects them in ring order"


def setup() -> SimpleNamespace:
    return SimpleNamespace(x1=1, x2=2, x3=1, done=[False] * 3, lock=threading.Lock(), ok=True)


def step_1(s: SimpleNamespace) -> None:
    with s.lock:
        s.x1 = (s.x3 + 1) % 4
        s.done[0] = True


def step_2(s: SimpleNamespace) -> None:
    with s.lock:
        s.x2 = s.x1
        s.done[1] = True


def step_3(s: SimpleNamespace) -> None:
    with s.lock:
        s.x3 = s.x2
        s.done[2] = True


def check(s: SimpleNamespace) -> None:
    with s.lock:
        if all(s.done):
            s.ok = s.x1 == s.x2 == s.x3


tasks = [step_1, step_2, step_3, check]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.ok)
