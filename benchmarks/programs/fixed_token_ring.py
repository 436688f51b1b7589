"""SCTBench's ``token_ring`` (see ``token_ring``) fixed: the token is
really passed -- each ring step waits for its predecessor's event before it
runs, and sets its own after -- so the three steps always run in ring
order and a checker that finds all three done sees ``x1 == x2 == x3``.
SCTBench has no fixed twin; this is the natural one."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "token_ring fixed: each ring step waits for its predecessor's event"


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        x1=1, x2=2, x3=1, done=[threading.Event() for _ in range(3)],
        lock=threading.Lock(), ok=True,
    )  # fmt: skip


def step_1(s: SimpleNamespace) -> None:
    with s.lock:
        s.x1 = (s.x3 + 1) % 4
    s.done[0].set()


def step_2(s: SimpleNamespace) -> None:
    s.done[0].wait()
    with s.lock:
        s.x2 = s.x1
    s.done[1].set()


def step_3(s: SimpleNamespace) -> None:
    s.done[1].wait()
    with s.lock:
        s.x3 = s.x2
    s.done[2].set()


def check(s: SimpleNamespace) -> None:
    with s.lock:
        if all(e.is_set() for e in s.done):
            s.ok = s.x1 == s.x2 == s.x3


tasks = [step_1, step_2, step_3, check]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.ok)
