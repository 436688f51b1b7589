"""A real-world race: asyncpg's pool initialisation awaited by two tasks
(https://github.com/MagicStack/asyncpg/issues/320, asyncpg 0.15/0.16),
transcribed. ``Pool.__await__`` runs ``_async__init__``, which returns at
once if the pool is initialised, else connects its first connection
holder, then the others, and only then sets ``_initialized``. A second task
awaiting the same pool while the first is still connecting the other
holders starts the initialisation again and connects the first holder a
second time: ``assert self._con is None`` fails (``InternalClientError``
in 0.16)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

BUG = True
DESCRIPTION = "asyncpg pool (issue #320): a second await of the pool re-runs its initialisation"


class InternalClientError(Exception):
    pass


class Holder:
    def __init__(self) -> None:
        self.con: object | None = None

    async def connect(self) -> None:
        if self.con is not None:
            raise InternalClientError("connection holder already connected")
        await asyncio.sleep(0)  # the connection handshake
        self.con = object()


def setup() -> SimpleNamespace:
    return SimpleNamespace(initialized=False, holders=[Holder(), Holder()], queries=0)


async def init_pool(s: SimpleNamespace) -> None:
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
