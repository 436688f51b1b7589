"""A hand-off through a flag, busy-waiting: the writer publishes the data
and then sets the flag; the reader spins until the flag is up."""

from __future__ import annotations

from types import SimpleNamespace

BUG = False
DESCRIPTION = "hand-off: data, then a flag; the reader spins on the flag"


def setup() -> SimpleNamespace:
    return SimpleNamespace(data=0, ready=False, seen=None)


def writer(s: SimpleNamespace) -> None:
    s.data = 42
    s.ready = True


def reader(s: SimpleNamespace) -> None:
    while not s.ready:
        pass  # spin
    s.seen = s.data


tasks = [writer, reader]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.seen == 42)
