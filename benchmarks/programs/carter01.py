"""SCTBench's ``carter01`` (CS benchmarks, Thomson, Donaldson and Betts,
TOPC 2016; ESBMC's ``carter01_bad.c``), transcribed: a "lightswitch" --
the first thread of a class takes the room lock ``l`` while it holds the
counter lock ``m``, the last one out releases ``l``. With one counter lock
shared by two classes, a class-B thread that arrives while class A holds
``l`` blocks on ``l`` *holding* ``m``, and the class-A thread needs ``m``
to leave and release ``l``: a deadlock, one preemption away. (The
original's two more threads have empty bodies and are left out.)"""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = (
    "SCTBench carter01: a lightswitch holding its counter lock while it waits for the room"
)


def setup() -> SimpleNamespace:
    return SimpleNamespace(m=threading.Lock(), l=threading.Lock(), a=0, b=0, done=0)


def class_a(s: SimpleNamespace) -> None:
    with s.m:
        s.a += 1
        if s.a == 1:
            s.l.acquire()
    s.done += 1  # the class-A operation
    with s.m:
        s.a -= 1
        if s.a == 0:
            s.l.release()


def class_b(s: SimpleNamespace) -> None:
    with s.m:
        s.b += 1
        if s.b == 1:
            s.l.acquire()
    s.done += 1  # the class-B operation
    with s.m:
        s.b -= 1
        if s.b == 0:
            s.l.release()


tasks = [class_a, class_b]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.done == 2)
