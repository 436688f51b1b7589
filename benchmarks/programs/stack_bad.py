"""SCTBench's ``stack_bad`` (CS benchmarks, Thomson, Donaldson and Betts,
TOPC 2016; from the ESBMC concurrency benchmarks), transcribed: a pusher
pushes 10 values, each push under the lock, and raises ``flag`` after the
first; a popper loops 10 times and, under the lock, pops whenever ``flag``
is up -- but ``flag`` means "something was pushed once", not "the stack is
not empty". When the popper gets ahead of the pusher it pops an empty
stack (the suite's underflow assertion)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench stack_bad: pop while a 'pushed once' flag is up, not while non-empty"

SIZE = 10


def setup() -> SimpleNamespace:
    return SimpleNamespace(stack=[], flag=False, lock=threading.Lock(), underflows=0)


def pusher(s: SimpleNamespace) -> None:
    for i in range(SIZE):
        with s.lock:
            s.stack.append(i)
            s.flag = True


def popper(s: SimpleNamespace) -> None:
    for _ in range(SIZE):
        with s.lock:
            if s.flag:
                if s.stack:
                    s.stack.pop()
                else:
                    s.underflows += 1  # the suite asserts pop() != UNDERFLOW


tasks = [pusher, popper]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.underflows == 0)
