"""Bounded-buffer overflow: ``full()`` then ``put_nowait()`` is not atomic,
so two producers may both see room for one item."""

from __future__ import annotations

import queue
from types import SimpleNamespace

BUG = True
DESCRIPTION = "bounded-buffer overflow: 'if not q.full(): q.put_nowait(x)' (queue.Full)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(q=queue.Queue(maxsize=1), dropped=0)


def offer(s: SimpleNamespace, item: int) -> None:
    if not s.q.full():
        s.q.put_nowait(item)  # raises queue.Full if the other producer got in first
    else:
        s.dropped += 1


def producer_1(s: SimpleNamespace) -> None:
    offer(s, 1)


def producer_2(s: SimpleNamespace) -> None:
    offer(s, 2)


tasks = [producer_1, producer_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.q.qsize() + s.dropped == 2)
