"""Lazy initialisation, double-checked without a lock: two users may both
find no instance and both build one."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "lazy initialisation: 'if instance is None: build it' without a lock"


def setup() -> SimpleNamespace:
    return SimpleNamespace(instance=None, built=0)


def get_instance(s: SimpleNamespace) -> object:
    if s.instance is None:
        s.built += 1  # the expensive construction, which must happen once
        s.instance = object()
    return s.instance


def user_1(s: SimpleNamespace) -> None:
    get_instance(s)


def user_2(s: SimpleNamespace) -> None:
    get_instance(s)


tasks = [user_1, user_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.built == 1)
