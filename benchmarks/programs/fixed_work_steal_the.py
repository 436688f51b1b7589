"""A work-stealing deque with Cilk-5's THE protocol (Frigo, Leiserson and
Randall, PLDI 1998): the owner claims the tail slot *first* (``tail -=
1``), then checks ``head``; only on a conflict does it take the lock,
retry, and back off if the thief got there. The thief, under the lock,
claims the head slot first and backs off when that passes ``tail``.
Correct under sequential consistency, which the GIL gives: the last item
goes to exactly one of them (see ``work_steal_check_then_take``)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "work-stealing deque with the THE protocol: claim first, then check, lock on conflict"


def setup() -> SimpleNamespace:
    return SimpleNamespace(items=["task"], head=0, tail=1, lock=threading.Lock(), taken=[])


def owner_pop(s: SimpleNamespace) -> None:
    t = s.tail - 1
    s.tail = t  # claim
    if s.head > t:  # maybe a conflict: settle it under the lock
        s.tail = t + 1
        with s.lock:
            t = s.tail - 1
            s.tail = t
            if s.head > t:
                s.tail = t + 1  # empty: the thief has it
                return
    s.taken.append(s.items[t])


def thief_steal(s: SimpleNamespace) -> None:
    with s.lock:
        h = s.head
        s.head = h + 1  # claim
        if s.head > s.tail:
            s.head = h  # empty, or the owner's last item: back off
            return
    s.taken.append(s.items[h])


tasks = [owner_pop, thief_steal]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.taken == ["task"])
