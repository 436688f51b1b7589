"""urllib3's ``connection_from_host`` race (see ``urllib3_pool_replace``)
fixed the way urllib3 has done it since
https://github.com/urllib3/urllib3/pull/204: the lookup, the creation and
the store happen under the container's (reentrant) lock, so the second
thread finds the first thread's pool and nothing is replaced. (With more
hosts than the container holds, a pool can still be evicted and closed
while in use -- urllib3 issues #1252 and #1262 -- which one host here
cannot show.)"""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "urllib3 PoolManager fixed (PR #204): get-or-create under the container's lock"


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
    with s.pools_lock:
        old = s.pools.get(key)
        s.pools[key] = pool
    if old is not None:
        old.close()


def connection_from_host(s: SimpleNamespace, key: str) -> Pool:
    with s.pools_lock:
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
