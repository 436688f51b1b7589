"""Atomicity violation between two locked regions: the check and the use
are each locked, but another thread closes the connection in between."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "atomicity violation: 'conn is not None' and 'conn.send()' in two locked regions"


class Connection:
    def send(self) -> str:
        return "sent"


def setup() -> SimpleNamespace:
    return SimpleNamespace(conn=Connection(), lock=threading.Lock(), log=[])


def send(s: SimpleNamespace) -> None:
    with s.lock:
        is_open = s.conn is not None
    if is_open:
        with s.lock:
            s.log.append(s.conn.send())  # AttributeError if closed in between


def close(s: SimpleNamespace) -> None:
    with s.lock:
        s.conn = None


tasks = [send, close]


def invariant(s: SimpleNamespace) -> bool:
    return s.log in ([], ["sent"])
