"""SCTBench's ``circular_buffer`` (CS benchmarks, Thomson, Donaldson and
Betts, TOPC 2016; ESBMC's ``circular_buffer_bad.c``), transcribed: a
sender and a receiver each loop 7 times taking one lock; the sender puts
its loop index in the buffer when ``send`` is set, the receiver takes one
out when ``receive`` is set and expects it to equal *its own* loop index.
The turns alternate, but an iteration that finds it is not its turn is
skipped, so the two indices drift apart as soon as either loop runs ahead
of the other."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "SCTBench circular_buffer: a receiver checks each value against its own loop index"

N = 7
SIZE = 10


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        buffer=[0] * SIZE, first=0, next=0, send=True, receive=False,
        lock=threading.Lock(), bad=[],
    )  # fmt: skip


def sender(s: SimpleNamespace) -> None:
    for i in range(N):
        with s.lock:
            if s.send:
                s.buffer[s.next] = i
                s.next = (s.next + 1) % SIZE
                s.send, s.receive = False, True


def receiver(s: SimpleNamespace) -> None:
    for i in range(N):
        with s.lock:
            if s.receive:
                value = s.buffer[s.first]
                s.first += 1
                if value != i:
                    s.bad.append((i, value))
                s.receive, s.send = False, True


tasks = [sender, receiver]


def invariant(s: SimpleNamespace) -> bool:
    return not s.bad
