"""SCTBench's ``reorder_3`` (see ``reorder_3``) fixed: each setter writes
``a`` and ``b`` under one lock and the checker reads both under it, so the
checker sees the pair before every setter or after one. SCTBench has no
fixed twin; this is the natural fix."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "reorder_3 fixed: the setters' two writes and the checker's two reads under one lock"

SETTERS = 3


def setup() -> SimpleNamespace:
    return SimpleNamespace(a=0, b=0, seen=None, lock=threading.Lock())


def setter(s: SimpleNamespace) -> None:
    with s.lock:
        s.a = 1
        s.b = -1


def checker(s: SimpleNamespace) -> None:
    with s.lock:
        a = s.a
        b = s.b
    s.seen = (a, b)


tasks = [*[setter] * SETTERS, checker]


def invariant(s: SimpleNamespace) -> bool:
    return s.seen in ((0, 0), (1, -1))
