"""SCTBench's ``TwoStage_100`` (CS benchmarks; Thomson, Donaldson and
Betts, "Concurrency testing using controlled schedulers: an empirical
study", TOPC 2016), transcribed: 100 threads write ``data1`` under one lock
and then ``data2 = data1 + 1`` under another; a reader that sees ``data1``
set must see ``data2`` match. It does not when it runs between a writer's
two stages -- one preemption among 101 threads."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench TwoStage_100: 100 two-stage writers, a reader between the stages"

WRITERS = 100


def setup() -> SimpleNamespace:
    return SimpleNamespace(data1=0, data2=0, m1=threading.Lock(), m2=threading.Lock(), seen=None)


def writer(s: SimpleNamespace) -> None:
    with s.m1:
        s.data1 = 1
    with s.m2:
        s.data2 = s.data1 + 1


def reader(s: SimpleNamespace) -> None:
    with s.m1:
        if s.data1 == 0:
            return
        t1 = s.data1
    with s.m2:
        t2 = s.data2
    s.seen = (t1, t2)


tasks = [*[writer] * WRITERS, reader]


def invariant(s: SimpleNamespace) -> bool:
    return s.seen is None or s.seen[1] == s.seen[0] + 1
