"""A litmus test for depth: the watcher fails only when it samples exactly
once between stages 1 and 2 and once between stages 2 and 3 -- writer,
watcher, writer, watcher: three preemptions, no fewer."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "needs three preemptions: a watcher sees two intermediate stages of a 3-step update"


def setup() -> SimpleNamespace:
    return SimpleNamespace(stage=0, seen=[])


def migrate(s: SimpleNamespace) -> None:
    s.stage = 1
    s.stage = 2
    s.stage = 3


def watch(s: SimpleNamespace) -> None:
    s.seen.append(s.stage)
    s.seen.append(s.stage)


tasks = [migrate, watch]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.seen != [1, 2])
