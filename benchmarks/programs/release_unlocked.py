"""Check-then-act on a lock itself: two cleanups both see it locked and
both release it; the second release raises RuntimeError."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "'if lock.locked(): lock.release()' in two threads (RuntimeError)"


def setup() -> SimpleNamespace:
    lock = threading.Lock()
    lock.acquire()  # left held by a job that has finished
    return SimpleNamespace(lock=lock, released=0)


def cleanup(s: SimpleNamespace) -> None:
    if s.lock.locked():
        s.lock.release()
        s.released += 1


def cleanup_2(s: SimpleNamespace) -> None:
    cleanup(s)


tasks = [cleanup, cleanup_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.released == 1 and not s.lock.locked())
