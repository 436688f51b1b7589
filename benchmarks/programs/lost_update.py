"""The lesson's first program, small loops: a global counter, ``counter += 1``
in one thread and ``counter -= 1`` in the other, no lock."""

from __future__ import annotations

BUG = True
DESCRIPTION = "lost update: the lesson's global counter += 1 / -= 1, no lock"

counter = 10


def setup() -> None:
    global counter
    counter = 10


def task_1(state: None) -> None:
    global counter
    for _ in range(2):
        counter += 1


def task_2(state: None) -> None:
    global counter
    for _ in range(3):
        counter -= 1


tasks = [task_1, task_2]


def invariant(state: None) -> bool:
    return counter == 9
