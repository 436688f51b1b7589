"""SCTBench's ``account`` (see ``account``) with the checker's assertion
right: once both updates are done the balance is ``x + y - z``, whatever
the order. SCTBench has no fixed twin; this is the natural one."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "account fixed: the checker asserts x + y - z once both updates are done"

X, Y, Z = 1, 2, 4


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        balance=X, deposited=False, withdrawn=False, lock=threading.Lock(), ok=True
    )


def check_result(s: SimpleNamespace) -> None:
    with s.lock:
        if s.deposited and s.withdrawn:
            s.ok = s.balance == X + Y - Z


def deposit(s: SimpleNamespace) -> None:
    with s.lock:
        s.balance = s.balance + Y
        s.deposited = True


def withdraw(s: SimpleNamespace) -> None:
    with s.lock:
        s.balance = s.balance - Z
        s.withdrawn = True


tasks = [check_result, deposit, withdraw]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.ok)
