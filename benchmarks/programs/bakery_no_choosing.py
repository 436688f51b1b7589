"""Lamport's bakery algorithm (see ``fixed_bakery``) without its
``choosing`` flags -- the classic mistake the flags exist to prevent: a
thread that has read the tickets but not yet stored its own looks like a
thread with no ticket, so the other takes a ticket, finds nobody ahead,
and enters; the first then stores the *same* ticket, wins the tie on its
smaller thread number, and enters too. Two preemptions: one between
reading the tickets and writing one's own, one inside the other's critical
section (else it has left, and ticket 0 lets the first in harmlessly)."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "Lamport's bakery without 'choosing': equal tickets, both threads inside"

N = 2


def setup() -> SimpleNamespace:
    return SimpleNamespace(number=[0] * N, inside=0, entered=0)


def enter(s: SimpleNamespace, me: int) -> None:
    s.number[me] = 1 + max(s.number)
    for j in range(N):
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
