"""SCTBench's ``reorder_3`` (CS benchmarks; Thomson, Donaldson and Betts,
"Concurrency testing using controlled schedulers: an empirical study", TOPC
2016; from the ESBMC concurrency benchmarks' ``reorder_bad.c``),
transcribed: setter threads write ``a = 1`` then ``b = -1``; a checker
reads both and expects ``(0, 0)`` or ``(1, -1)``. It sees ``(1, 0)`` when
it runs between a setter's two writes (or ``(0, -1)`` when a whole setter
runs between its two reads) -- one preemption. Here 3 setters and the
checker, 4 threads."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench reorder_3: 3 setters write a then b, a checker reads between the writes"

SETTERS = 3


def setup() -> SimpleNamespace:
    return SimpleNamespace(a=0, b=0, seen=None)


def setter(s: SimpleNamespace) -> None:
    s.a = 1
    s.b = -1


def checker(s: SimpleNamespace) -> None:
    a = s.a
    b = s.b
    s.seen = (a, b)


tasks = [*[setter] * SETTERS, checker]


def invariant(s: SimpleNamespace) -> bool:
    return s.seen in ((0, 0), (1, -1))
