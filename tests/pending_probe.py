"""A reduced ``dfs`` that checks ``Scheduler.pending`` as it goes (for
``tests/test_explore_reduction.py``). In a file of its own: it runs on the
explorer's task threads, inside the scheduler, so the test's driver must
not count this file as the user's code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from critsec.explorer._dpor import DPORStrategy, Footprint
from critsec.explorer._scheduler import Scheduler


class PendingChecked(DPORStrategy):
    """Reduced dfs that, at every step, asks what each runnable task would
    touch next (``Scheduler.pending``, which sleep sets rely on) and, once
    the task has run that step, compares it with what the step said."""

    def __init__(self) -> None:
        super().__init__()
        self.compared = 0
        self.wrong: list[tuple[Any, Any]] = []

    def observe(self, scheduler: Scheduler) -> None:
        super().observe(scheduler)
        self.said: dict[int, list[Footprint]] = {}  # since the task last ran
        self.ran: int | None = None

    def stepped(self, runnable: Sequence[int], current: int | None, choice: int) -> None:
        self._check_last()
        scheduler = self.scheduler
        assert scheduler is not None and scheduler.pending is not None
        for task in runnable:
            pending = scheduler.pending(task)
            if pending is not None:
                self.said.setdefault(task, []).append(pending)
        self.ran = choice
        super().stepped(runnable, current, choice)

    def end(self, steps: int, trail: Sequence[Footprint] = ()) -> bool:
        self._check_last()
        return super().end(steps, trail)

    def _check_last(self) -> None:
        # The step the last chosen task ran is complete now.
        assert self.scheduler is not None and self.scheduler.trail is not None
        if self.ran is None:
            return
        step = self.scheduler.trail[self.depth - 1]
        ran = (step.opaque, step.reads_all, step.reads, step.writes)
        for pending in self.said.pop(self.ran, []):
            self.compared += 1
            if (pending.opaque, pending.reads_all, pending.reads, pending.writes) != ran:
                self.wrong.append((pending, step))
        self.ran = None
