"""Peterson's algorithm with its two first writes swapped: giving the
turn away before raising the flag lets both threads in (SCTBench's
``CS/peterson`` variant)."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "Peterson's algorithm, turn written before the flag: both enter"


def setup() -> SimpleNamespace:
    return SimpleNamespace(flag=[False, False], turn=0, inside=0, entered=0)


def enter(s: SimpleNamespace, me: int) -> None:
    other = 1 - me
    s.turn = other  # too early: the other may read our flag as still down
    s.flag[me] = True
    while s.flag[other] and s.turn == other:
        pass  # spin
    s.inside += 1
    s.entered = max(s.entered, s.inside)
    s.inside -= 1
    s.flag[me] = False


def task_0(s: SimpleNamespace) -> None:
    enter(s, 0)


def task_1(s: SimpleNamespace) -> None:
    enter(s, 1)


tasks = [task_0, task_1]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.entered == 1)
