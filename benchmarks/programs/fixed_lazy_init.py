"""Lazy initialisation done right: double-checked, the second check under a lock."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "lazy initialisation, double-checked with the second check under a lock"


def setup() -> SimpleNamespace:
    return SimpleNamespace(instance=None, built=0, lock=threading.Lock())


def get_instance(s: SimpleNamespace) -> object:
    if s.instance is None:
        with s.lock:
            if s.instance is None:
                s.built += 1
                s.instance = object()
    return s.instance


def user_1(s: SimpleNamespace) -> None:
    get_instance(s)


def user_2(s: SimpleNamespace) -> None:
    get_instance(s)


tasks = [user_1, user_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.built == 1)
