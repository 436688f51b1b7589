"""SCTBench's ``wronglock_3`` (CS benchmarks, Thomson, Donaldson and Betts,
TOPC 2016; from the ESBMC concurrency benchmarks' ``wronglock_bad.c`` with
1 + 3 threads), transcribed: one thread increments ``data`` under
``data_lock`` and checks, still under it, that ``data`` went up by exactly
one; three others increment ``data`` under a *different* lock, so one of
them can slip in between the first thread's read and its check.
(``wrong_lock`` is the two-thread lost-update form of the same mistake;
this one is the suite's, with its in-lock check and its thread count.)"""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench wronglock_3: a checked increment under one lock, 3 others under another"

OTHERS = 3


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        data=0, data_lock=threading.Lock(), this_lock=threading.Lock(), bad=False
    )


def checked_increment(s: SimpleNamespace) -> None:
    with s.data_lock:
        x = s.data
        s.data += 1
        if s.data != x + 1:
            s.bad = True


def other_increment(s: SimpleNamespace) -> None:
    with s.this_lock:
        s.data += 1


tasks = [checked_increment, *[other_increment] * OTHERS]


def invariant(s: SimpleNamespace) -> bool:
    return not s.bad
