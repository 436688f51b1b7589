"""Dekker's mutual exclusion, two threads, busy-waiting: the first
correct software solution (Dijkstra, 1965). A thread that wants in backs
off -- lowers its flag and spins on the turn -- when it is not its turn."""

from __future__ import annotations

from types import SimpleNamespace

BUG = False
DESCRIPTION = "Dekker's algorithm: flags, a turn and backing off, spin-waiting (CHESS)"


def setup() -> SimpleNamespace:
    return SimpleNamespace(flag=[False, False], turn=0, inside=0, entered=0)


def enter(s: SimpleNamespace, me: int) -> None:
    other = 1 - me
    s.flag[me] = True
    while s.flag[other]:
        if s.turn != me:
            s.flag[me] = False
            while s.turn != me:
                pass  # spin
            s.flag[me] = True
    s.inside += 1
    s.entered = max(s.entered, s.inside)
    s.inside -= 1
    s.turn = other
    s.flag[me] = False


def task_0(s: SimpleNamespace) -> None:
    enter(s, 0)


def task_1(s: SimpleNamespace) -> None:
    enter(s, 1)


tasks = [task_0, task_1]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.entered == 1)
