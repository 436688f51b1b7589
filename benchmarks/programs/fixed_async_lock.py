"""The asyncio deposit done right: the read, the await and the write under
one ``asyncio.Lock``."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

BUG = False
DESCRIPTION = "asyncio read/await/write under an asyncio.Lock"


def setup() -> SimpleNamespace:
    return SimpleNamespace(balance=0, lock=asyncio.Lock())


async def deposit(s: SimpleNamespace) -> None:
    async with s.lock:
        balance = s.balance
        await asyncio.sleep(0)
        s.balance = balance + 10


async def deposit_again(s: SimpleNamespace) -> None:
    await deposit(s)


tasks = [deposit, deposit_again]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.balance == 20)
