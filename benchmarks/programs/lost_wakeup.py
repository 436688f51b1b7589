"""A lost wake-up: the waiter checks the flag outside the condition's lock,
so the notify can come between its check and its wait."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "lost wake-up: flag checked outside the condition's lock, then wait()"


def setup() -> SimpleNamespace:
    return SimpleNamespace(ready=False, woke=False, cond=threading.Condition())


def notifier(s: SimpleNamespace) -> None:
    with s.cond:
        s.ready = True
        s.cond.notify_all()


def waiter(s: SimpleNamespace) -> None:
    if not s.ready:
        with s.cond:
            s.cond.wait()  # waits forever if the notify already happened
    s.woke = True


tasks = [notifier, waiter]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.woke)
