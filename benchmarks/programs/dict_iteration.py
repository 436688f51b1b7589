"""Iterating a dict while another thread adds to it: RuntimeError."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "dict iterated while another thread inserts (RuntimeError)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(users={"ada": 1, "bob": 2}, lines=[])


def report(s: SimpleNamespace) -> None:
    for name in s.users:
        s.lines.append(name)


def register(s: SimpleNamespace) -> None:
    s.users["cy"] = 3


tasks = [report, register]


def invariant(s: SimpleNamespace) -> bool:
    return s.lines in (["ada", "bob"], ["ada", "bob", "cy"])
