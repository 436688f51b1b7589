"""Lamport's bakery algorithm (CACM 1974), two threads, busy-waiting: each
takes a ticket one higher than every ticket it sees, announcing with
``choosing`` that it is picking one, then waits for every thread still
choosing and for every smaller ticket (ties broken by thread number).
Correct under sequential consistency, which the GIL gives; a
busy-waiting classic like ``fixed_peterson`` and ``fixed_dekker``."""

from __future__ import annotations

from types import SimpleNamespace

BUG = False
DESCRIPTION = "Lamport's bakery: tickets and 'choosing' flags, spin-waiting"

N = 2


def setup() -> SimpleNamespace:
    return SimpleNamespace(choosing=[False] * N, number=[0] * N, inside=0, entered=0)


def enter(s: SimpleNamespace, me: int) -> None:
    s.choosing[me] = True
    s.number[me] = 1 + max(s.number)
    s.choosing[me] = False
    for j in range(N):
        while s.choosing[j]:
            pass  # spin: j is picking its ticket
        while s.number[j] != 0 and (s.number[j], j) < (s.number[me], me):
            pass  # spin: j holds a smaller ticket
    s.inside += 1
    s.entered = max(s.entered, s.inside)  # two inside at once would make it 2
    s.inside -= 1
    s.number[me] = 0


def task_0(s: SimpleNamespace) -> None:
    enter(s, 0)


def task_1(s: SimpleNamespace) -> None:
    enter(s, 1)


tasks = [task_0, task_1]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.entered == 1)
