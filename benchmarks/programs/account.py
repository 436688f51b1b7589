"""SCTBench's ``account`` (CS benchmarks, Thomson, Donaldson and Betts,
TOPC 2016; ESBMC's ``account_bad.c``), transcribed: a deposit of ``y`` and
a withdrawal of ``z``, each under the account lock, and a checker that,
once both are done, asserts the wrong balance ``(x - y) - z`` instead of
``x + y - z``. Every step is locked; the bad assertion is reached only when
the checker runs after both updates, which the listed order never does."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench account: a checker's wrong balance, reached only if it runs last"

X, Y, Z = 1, 2, 4


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        balance=X, deposited=False, withdrawn=False, lock=threading.Lock(), ok=True
    )


def check_result(s: SimpleNamespace) -> None:
    with s.lock:
        if s.deposited and s.withdrawn:
            s.ok = s.balance == (X - Y) - Z  # the suite's bad assertion


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
