"""The spinning hand-off with its two writes swapped: the flag goes up
before the data is there, and the reader can take the old value."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "hand-off: the flag set before the data; the reader spins on the flag"


def setup() -> SimpleNamespace:
    return SimpleNamespace(data=0, ready=False, seen=None)


def writer(s: SimpleNamespace) -> None:
    s.ready = True
    s.data = 42


def reader(s: SimpleNamespace) -> None:
    while not s.ready:
        pass  # spin
    s.seen = s.data


tasks = [writer, reader]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.seen == 42)
