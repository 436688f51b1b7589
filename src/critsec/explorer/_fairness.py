"""Telling a task that waits by spinning from one that makes progress.

Fair scheduling (Musuvathi and Qadeer, "Fair stateless model checking",
PLDI 2008) needs to know when a task *yields without progress*. Python
code has no ``sched_yield`` to watch for, so the drivers report where a
task starts a round of a loop (threads: a loop head; generator and asyncio
tasks: each ``yield``/``await`` that is no wait on a primitive), with its
locals and what it did since its last round there -- the reads, writes
and calls the trace records. A round that finds all of that as it was the
time before made no progress: the task spins (``while not s.ready: pass``,
Peterson's ``while flag[j] and turn == j``, ``while not q: yield``). The
scheduler then lets the others run first (:meth:`~._scheduler.Scheduler.spun`);
when every task only spins for ``LIVELOCK_SPINS`` rounds in a row, nothing
can change any more and the schedule ends as a livelock, naming each
spinning loop.

Locals are compared by identity, never by ``==`` (which could run the
user's code); a loop that changes only what the trace cannot see (a C
method such as ``list.append`` on an object it holds) may be taken for a
spin, which costs it only its turn: it runs again as soon as the others
block, finish or spin themselves, and it cannot be a livelock for long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._driver import RunOutcome
from ._scheduler import Scheduler

__all__ = ["Rounds"]

#: What a task saw at the start of a round: its locals, the round's events.
_Seen = tuple[tuple[Any, ...], tuple[tuple[str, str], ...]]


class Rounds:
    """The rounds of every task's loops in one schedule."""

    def __init__(self, scheduler: Scheduler, name: Callable[[int], str]) -> None:
        self.scheduler = scheduler
        self.name = name  # a task's name, for the livelock's message
        self.seen: dict[tuple[int, Any], _Seen] = {}
        #: task -> (file:line, source) of the loop it spins in, until it progresses
        self.spinning: dict[int, tuple[str, str]] = {}

    def went_round(
        self,
        task: int,
        place: Any,
        local_values: Iterable[Any],
        events: Iterable[tuple[str, str]],
        at: Callable[[], tuple[str, str]],
    ) -> RunOutcome | None:
        """``task`` is at ``place`` again: tell the scheduler whether it
        spins or progressed. ``at()`` says where the loop is, ``(file:line,
        source)``: asked only of a task that spins. Returns the livelock
        outcome once there is one."""
        seen = (tuple(local_values), tuple(events))
        before = self.seen.get((task, place))
        self.seen[task, place] = seen
        if before is None or not _same(before, seen):
            self.progressed(task)
            return None
        self.spinning[task] = at()
        if not self.scheduler.spun(task):
            return None
        spinners = sorted(self.spinning.items())
        line = "livelock: no task makes progress: " + "; ".join(
            f"{self.name(i)!r} spins at {where}" for i, (where, _) in spinners
        )
        detail = "\n".join(
            f"task {self.name(i)!r} spins at {where}: {source}" for i, (where, source) in spinners
        )
        return RunOutcome("livelock", line, detail)

    def progressed(self, task: int) -> None:
        """``task`` did something else than spin (a new round, a wait on a
        primitive, its end)."""
        self.spinning.pop(task, None)
        self.scheduler.progressed()


def _same(before: _Seen, now: _Seen) -> bool:
    (locals_before, events_before), (locals_now, events_now) = before, now
    return (
        len(locals_before) == len(locals_now)
        and all(a is b for a, b in zip(locals_before, locals_now, strict=True))
        and events_before == events_now
    )
