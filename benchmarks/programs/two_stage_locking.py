"""Two-stage locking: read under the lock, write under a second acquisition."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "two-stage locking: read under the lock, write under another acquisition"


def setup() -> SimpleNamespace:
    return SimpleNamespace(balance=0, lock=threading.Lock())


def deposit(s: SimpleNamespace) -> None:
    with s.lock:
        balance = s.balance
    with s.lock:
        s.balance = balance + 10


def deposit_again(s: SimpleNamespace) -> None:
    deposit(s)


tasks = [deposit, deposit_again]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.balance == 20)
