"""An asyncio lock-order deadlock: two tasks take two ``asyncio.Lock``s in
opposite orders, with an await in between."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

BUG = True
DESCRIPTION = "asyncio lock-order deadlock: two asyncio.Locks in opposite orders"


def setup() -> SimpleNamespace:
    return SimpleNamespace(moved=0, a=asyncio.Lock(), b=asyncio.Lock())


async def a_then_b(s: SimpleNamespace) -> None:
    async with s.a:
        await asyncio.sleep(0)
        async with s.b:
            s.moved += 1


async def b_then_a(s: SimpleNamespace) -> None:
    async with s.b:
        await asyncio.sleep(0)
        async with s.a:
            s.moved += 1


tasks = [a_then_b, b_then_a]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.moved == 2)
