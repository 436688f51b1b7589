"""An asyncio cache miss handled twice: both tasks find the key missing and
both fetch it, because the fetch awaits."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

BUG = True
DESCRIPTION = "asyncio check-then-act: a cache miss fetched twice across an await"


def setup() -> SimpleNamespace:
    return SimpleNamespace(cache={}, fetches=0)


async def get(s: SimpleNamespace) -> str:
    if "user" not in s.cache:
        s.fetches += 1
        await asyncio.sleep(0)  # the fetch, over the network
        s.cache["user"] = "ada"
    return str(s.cache["user"])


async def get_again(s: SimpleNamespace) -> None:
    await get(s)


tasks = [get, get_again]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.fetches == 1)
