"""An asyncio lost update: the balance is read, an ``await`` lets the other
task run, and the stale balance is written back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

BUG = True
DESCRIPTION = "asyncio lost update: read, await (I/O), write back"


def setup() -> SimpleNamespace:
    return SimpleNamespace(balance=0)


async def deposit(s: SimpleNamespace) -> None:
    balance = s.balance
    await asyncio.sleep(0)  # stands for an await on I/O, e.g. an audit log write
    s.balance = balance + 10


async def deposit_again(s: SimpleNamespace) -> None:
    await deposit(s)


tasks = [deposit, deposit_again]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.balance == 20)
