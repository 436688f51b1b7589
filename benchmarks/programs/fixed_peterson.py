"""Peterson's mutual exclusion (1981), two threads, busy-waiting: each
raises its flag, gives the other the turn, and spins while the other wants
in and has the turn. Correct under sequential consistency, which the GIL
gives."""

from __future__ import annotations

from types import SimpleNamespace

BUG = False
DESCRIPTION = "Peterson's algorithm: flags and a turn, spin-waiting (CHESS)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(flag=[False, False], turn=0, inside=0, entered=0)


def enter(s: SimpleNamespace, me: int) -> None:
    other = 1 - me
    s.flag[me] = True
    s.turn = other
    while s.flag[other] and s.turn == other:
        pass  # spin
    s.inside += 1
    s.entered = max(s.entered, s.inside)  # two inside at once would make it 2
    s.inside -= 1
    s.flag[me] = False


def task_0(s: SimpleNamespace) -> None:
    enter(s, 0)


def task_1(s: SimpleNamespace) -> None:
    enter(s, 1)


tasks = [task_0, task_1]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.entered == 1)
