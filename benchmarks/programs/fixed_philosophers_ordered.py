"""Three dining philosophers who never deadlock because every one takes
the lower-numbered of its two forks first (a global lock order: Dijkstra's
resource hierarchy, CHESS's ``philosophers`` fixed)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "3 philosophers, forks taken in a global order (lower number first)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(forks=[threading.Lock() for _ in range(3)], meals=[0, 0, 0])


def dine(s: SimpleNamespace, me: int) -> None:
    first, second = sorted((me, (me + 1) % 3))
    with s.forks[first], s.forks[second]:
        s.meals[me] += 1


def philosopher_0(s: SimpleNamespace) -> None:
    dine(s, 0)


def philosopher_1(s: SimpleNamespace) -> None:
    dine(s, 1)


def philosopher_2(s: SimpleNamespace) -> None:
    dine(s, 2)


tasks = [philosopher_0, philosopher_1, philosopher_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.meals == [1, 1, 1])
