"""Check-then-act: two withdrawals each check the balance, then withdraw."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "check-then-act: 'if balance >= 80: balance -= 80' in two threads"


def setup() -> SimpleNamespace:
    return SimpleNamespace(balance=100)


def withdraw(s: SimpleNamespace) -> None:
    if s.balance >= 80:
        s.balance -= 80


def withdraw_again(s: SimpleNamespace) -> None:
    withdraw(s)


tasks = [withdraw, withdraw_again]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.balance >= 0)
