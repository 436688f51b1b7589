"""Publication order done right: data first, then the flag."""

from __future__ import annotations

from types import SimpleNamespace

BUG = False
DESCRIPTION = "publication order: data written before the flag that announces it"


def setup() -> SimpleNamespace:
    return SimpleNamespace(ready=False, data=0, seen="nothing")


def publish(s: SimpleNamespace) -> None:
    s.data = 42
    s.ready = True


def consume(s: SimpleNamespace) -> None:
    if s.ready:
        s.seen = s.data


tasks = [publish, consume]


def invariant(s: SimpleNamespace) -> bool:
    return s.seen in ("nothing", 42)
