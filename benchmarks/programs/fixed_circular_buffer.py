"""SCTBench's ``circular_buffer`` (see ``circular_buffer``) fixed: the
sender numbers what it sends and the receiver checks against the count it
has received, not against its loop index, so skipped turns on either side
no longer matter. SCTBench has no fixed twin; this is the natural fix."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "circular_buffer fixed: values checked against a received count, not the loop index"

N = 7
SIZE = 10


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        buffer=[0] * SIZE, first=0, next=0, send=True, receive=False,
        sent=0, received=0, lock=threading.Lock(), bad=[],
    )  # fmt: skip


def sender(s: SimpleNamespace) -> None:
    for _ in range(N):
        with s.lock:
            if s.send:
                s.buffer[s.next] = s.sent
                s.sent += 1
                s.next = (s.next + 1) % SIZE
                s.send, s.receive = False, True


def receiver(s: SimpleNamespace) -> None:
    for _ in range(N):
        with s.lock:
            if s.receive:
                value = s.buffer[s.first]
                s.first += 1
                if value != s.received:
                    s.bad.append((s.received, value))
                s.received += 1
                s.receive, s.send = False, True


tasks = [sender, receiver]


def invariant(s: SimpleNamespace) -> bool:
    return not s.bad
