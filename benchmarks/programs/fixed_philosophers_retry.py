"""Three dining philosophers who never deadlock: each takes the left fork,
tries the right one without waiting, and on failure puts the left one back
and tries again -- a retry loop that can only starve under an unfair
scheduler (CHESS's ``philosophers`` with back-off)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "3 philosophers: left fork, try the right one, else put back and retry"


def setup() -> SimpleNamespace:
    return SimpleNamespace(forks=[threading.Lock() for _ in range(3)], meals=[0, 0, 0])


def dine(s: SimpleNamespace, me: int) -> None:
    left, right = s.forks[me], s.forks[(me + 1) % 3]
    while True:
        left.acquire()
        if right.acquire(blocking=False):
            break
        left.release()
    s.meals[me] += 1
    right.release()
    left.release()


def philosopher_0(s: SimpleNamespace) -> None:
    dine(s, 0)


def philosopher_1(s: SimpleNamespace) -> None:
    dine(s, 1)


def philosopher_2(s: SimpleNamespace) -> None:
    dine(s, 2)


tasks = [philosopher_0, philosopher_1, philosopher_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.meals == [1, 1, 1])
