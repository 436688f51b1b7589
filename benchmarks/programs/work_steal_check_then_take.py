"""A work-stealing deque's last item taken twice: the owner pops at the
tail without a lock, the thief steals at the head under one, and the
owner's pop checks ``head < tail`` *before* it claims the slot -- the race
that Cilk-5's THE protocol (Frigo, Leiserson and Randall, PLDI 1998)
exists to close. With one item left, a thief that steals between the
owner's check and its claim takes the same item: one preemption."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "work-stealing deque: the owner checks, then claims the last item; a thief steals it"


def setup() -> SimpleNamespace:
    return SimpleNamespace(items=["task"], head=0, tail=1, lock=threading.Lock(), taken=[])


def owner_pop(s: SimpleNamespace) -> None:
    if s.head < s.tail:  # not empty ...
        s.tail -= 1  # ... so claim the last slot
        s.taken.append(s.items[s.tail])


def thief_steal(s: SimpleNamespace) -> None:
    with s.lock:
        if s.head < s.tail:
            s.taken.append(s.items[s.head])
            s.head += 1


tasks = [owner_pop, thief_steal]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.taken == ["task"])
