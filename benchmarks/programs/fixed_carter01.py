"""SCTBench's ``carter01`` (see ``carter01``) fixed the way Downey's *Little
Book of Semaphores* writes the lightswitch: one counter lock per class, so
a thread waiting for the room holds only its own class's counter lock,
never the one the room's holder needs to leave. SCTBench has no fixed
twin; this is the textbook fix."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "carter01 fixed: a lightswitch with one counter lock per class (Downey)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        m_a=threading.Lock(), m_b=threading.Lock(), l=threading.Lock(), a=0, b=0, done=0
    )


def class_a(s: SimpleNamespace) -> None:
    with s.m_a:
        s.a += 1
        if s.a == 1:
            s.l.acquire()
    s.done += 1  # the class-A operation
    with s.m_a:
        s.a -= 1
        if s.a == 0:
            s.l.release()


def class_b(s: SimpleNamespace) -> None:
    with s.m_b:
        s.b += 1
        if s.b == 1:
            s.l.acquire()
    s.done += 1  # the class-B operation
    with s.m_b:
        s.b -= 1
        if s.b == 0:
            s.l.release()


tasks = [class_a, class_b]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.done == 2)
