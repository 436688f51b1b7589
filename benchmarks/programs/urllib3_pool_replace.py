"""A real-world race: urllib3's ``PoolManager.connection_from_host``
before https://github.com/urllib3/urllib3/pull/204 (2013), transcribed.
Two threads ask for the pool of one host: both find none, both make one,
both store it -- and the container (``RecentlyUsedContainer``, locked
itself) closes the value it replaces, so the thread whose pool was stored
first goes on to use a closed pool (``ClosedPoolError``)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "urllib3 PoolManager (PR #204): get-or-create a pool; the replaced pool is closed"


class ClosedPoolError(Exception):
    pass


class Pool:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def urlopen(self) -> str:
        if self.closed:
            raise ClosedPoolError("Pool is closed.")
        return "200 OK"


def setup() -> SimpleNamespace:
    return SimpleNamespace(pools={}, pools_lock=threading.RLock(), responses=[])


def store(s: SimpleNamespace, key: str, pool: Pool) -> None:
    # RecentlyUsedContainer.__setitem__: under its lock; disposes what it replaces
    with s.pools_lock:
        old = s.pools.get(key)
        s.pools[key] = pool
    if old is not None:
        old.close()


def connection_from_host(s: SimpleNamespace, key: str) -> Pool:
    pool: Pool | None = s.pools.get(key)
    if pool is None:
        pool = Pool()
        store(s, key, pool)
    return pool


def request_1(s: SimpleNamespace) -> None:
    s.responses.append(connection_from_host(s, "example.org:443").urlopen())


def request_2(s: SimpleNamespace) -> None:
    s.responses.append(connection_from_host(s, "example.org:443").urlopen())


tasks = [request_1, request_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.responses == ["200 OK", "200 OK"])
