"""A lock-order deadlock among generator tasks with critsec coroutines locks."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import critsec

BUG = True
DESCRIPTION = "generator tasks taking two coroutines locks in opposite orders"


def setup() -> SimpleNamespace:
    rt = critsec.runtime("coroutines")
    return SimpleNamespace(moved=0, a=rt.lock(), b=rt.lock())


def a_then_b(s: SimpleNamespace) -> Iterator[Any]:
    with (yield from s.a):
        yield
        with (yield from s.b):
            s.moved += 1


def b_then_a(s: SimpleNamespace) -> Iterator[Any]:
    with (yield from s.b):
        yield
        with (yield from s.a):
            s.moved += 1


tasks = [a_then_b, b_then_a]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.moved == 2)
