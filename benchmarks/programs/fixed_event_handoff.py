"""A hand-off through ``threading.Event``: the reader waits for the event,
which is set only after the data is written."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "hand-off: data written, then Event.set(); the reader waits on the Event"


def setup() -> SimpleNamespace:
    return SimpleNamespace(data=0, seen=None, ready=threading.Event())


def writer(s: SimpleNamespace) -> None:
    s.data = 42
    s.ready.set()


def reader(s: SimpleNamespace) -> None:
    s.ready.wait()
    s.seen = s.data


tasks = [writer, reader]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.seen == 42)
