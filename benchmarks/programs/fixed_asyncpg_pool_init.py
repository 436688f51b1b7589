"""asyncpg's pool initialisation race (issue #320, see
``asyncpg_pool_init``) fixed: the initialisation runs under an
``asyncio.Lock`` and re-checks ``initialized`` inside, so a second task
waits for the first one's initialisation instead of starting its own. (Not
asyncpg's own change; the natural fix for the shape.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

BUG = False
DESCRIPTION = "asyncpg pool init fixed: initialise under an asyncio.Lock, re-checked inside"


class InternalClientError(Exception):
    pass


class Holder:
    def __init__(self) -> None:
        self.con: object | None = None

    async def connect(self) -> None:
        if self.con is not None:
            raise InternalClientError("connection holder already connected")
        await asyncio.sleep(0)
        self.con = object()


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        initialized=False, holders=[Holder(), Holder()], queries=0, lock=asyncio.Lock()
    )


async def init_pool(s: SimpleNamespace) -> None:
    if s.initialized:
        return
    async with s.lock:
        if s.initialized:
            return
        await s.holders[0].connect()
        for holder in s.holders[1:]:
            await holder.connect()
        s.initialized = True


async def handler_1(s: SimpleNamespace) -> None:
    await init_pool(s)
    s.queries += 1


async def handler_2(s: SimpleNamespace) -> None:
    await init_pool(s)
    s.queries += 1


tasks = [handler_1, handler_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.queries == 2)
