"""Publication order: the writer raises the flag before it writes the data."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "publication order: flag set before the data it announces"


def setup() -> SimpleNamespace:
    return SimpleNamespace(ready=False, data=0, seen="nothing")


def publish(s: SimpleNamespace) -> None:
    s.ready = True
    s.data = 42


def consume(s: SimpleNamespace) -> None:
    if s.ready:
        s.seen = s.data


tasks = [publish, consume]


def invariant(s: SimpleNamespace) -> bool:
    return s.seen in ("nothing", 42)
