"""SCTBench's ``stack_ok`` (CS benchmarks, Thomson, Donaldson and Betts,
TOPC 2016; the ESBMC benchmarks' correct twin of ``stack_bad``),
transcribed: the popper pops only when the stack is not empty, tested
under the same lock as the pop."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "SCTBench stack_ok: pop only when non-empty, checked under the pop's lock"

SIZE = 10


def setup() -> SimpleNamespace:
    return SimpleNamespace(stack=[], lock=threading.Lock(), pops=0)


def pusher(s: SimpleNamespace) -> None:
    for i in range(SIZE):
        with s.lock:
            s.stack.append(i)


def popper(s: SimpleNamespace) -> None:
    for _ in range(SIZE):
        with s.lock:
            if len(s.stack) > 0:
                s.stack.pop()
                s.pops += 1


tasks = [pusher, popper]


def invariant(s: SimpleNamespace) -> bool:
    return bool(len(s.stack) == SIZE - s.pops)
