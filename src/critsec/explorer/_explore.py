"""``explore`` and ``replay``: search the schedules of a concurrent program
for one that breaks it, and run that one again.
"""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._task import common_kind
from ._driver import Driver, RunOutcome, task_names, task_roles
from ._exits import ProcessExitsRefused
from ._scheduler import (
    ReplayStrategy,
    Scheduler,
    Strategy,
    decode_schedule,
    encode_schedule,
    make_strategy,
)
from ._settings import Settings
from ._trace import Event, Recorder, render_json, render_table, summary

__all__ = ["GRANULARITIES", "Result", "explore", "replay"]

#: Where a thread task may be switched: before any bytecode instruction of
#: the user's code, or only where a new source line starts.
GRANULARITIES = ("opcode", "line")

#: The driver for each kind of task (see ``critsec._task.task_kind``).
_DRIVERS = {
    "blocking": "critsec.explorer._threads:ThreadDriver",
    "generator": "critsec.explorer._generators:GeneratorDriver",
    "async": "critsec.explorer._asyncio:AsyncioDriver",
}


@dataclass(frozen=True)
class Result:
    """What ``explore`` (or ``replay``) found.

    ``failed`` and ``kind`` (``"invariant"``, ``"exception"``,
    ``"deadlock"``, or None; a task that would end the process --
    ``sys.exit()``, ``os._exit()``, a fatal signal to itself -- is an
    ``"exception"``: :class:`~critsec.explorer.ProcessExit`); ``schedules``
    run; ``exhausted``: every schedule within the bound was tried (``dfs``
    only), so a pass is a proof within that bound; ``schedule``: the replay token of the failing
    schedule (None on a pass); ``trace``: that schedule for people;
    ``seed``: the seed used (pass it back to see the same schedules).
    """

    failed: bool
    kind: str | None
    schedules: int
    exhausted: bool
    schedule: str | None
    trace: str
    message: str
    seed: int
    strategy: str
    seconds: float
    task_names: tuple[str, ...] = ()
    events: tuple[Event, ...] = field(default=(), repr=False)
    outcome: RunOutcome | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The result and its trace as JSON-ready data, for reports and tools."""
        return {
            "failed": self.failed,
            "kind": self.kind,
            "message": self.message,
            "schedules": self.schedules,
            "exhausted": self.exhausted,
            "schedule": self.schedule,
            "seed": self.seed,
            "strategy": self.strategy,
            "seconds": self.seconds,
            "trace": (
                render_json(self.task_names, self.events, self.outcome) if self.failed else None
            ),
        }

    def __str__(self) -> str:
        return summary(self, "replay with schedule {token}")

    def _repr_html_(self) -> str:
        """The interleaving player (``critsec.explorer._html``), for Jupyter."""
        from ._html import render_html

        return render_html(self)


def _driver(kind: str, granularity: str, include: Sequence[str]) -> Driver:
    module, name = _DRIVERS[kind].split(":")
    cls = getattr(importlib.import_module(module), name)
    if isinstance(include, str) or include:
        if kind != "blocking":
            raise ValueError(
                "include applies to plain-function (thread) tasks only: generator and async "
                "tasks switch only where they yield or await, in whatever module"
            )
        from ._usercode import including

        return cls(granularity=granularity, user_code=including(include))  # type: ignore[no-any-return]
    return cls(granularity=granularity)  # type: ignore[no-any-return]


def _search(
    setup: Callable[[], Any],
    tasks: Sequence[Callable[..., Any]],
    invariant: Callable[[Any], bool],
    strategy_for: Callable[[Driver], Strategy],
    *,
    max_schedules: int,
    seed: int,
    timeout: float | None,
    granularity: str,
    max_steps: int,
    include: Sequence[str],
) -> Result:
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; valid: {', '.join(GRANULARITIES)}")
    if not callable(setup) or not callable(invariant):
        raise TypeError("setup and invariant must be callables")
    tasks = list(tasks)
    if not tasks:
        raise ValueError("explore needs at least one task")
    driver = _driver(common_kind(tasks), granularity, include)
    strategy = strategy_for(driver)
    strategy.cast(task_roles(tasks))
    names = task_names(tasks)
    rng = random.Random(seed)
    started = time.monotonic()
    schedules = 0
    exhausted = False
    deadline = None if timeout is None else started + timeout
    while schedules < max_schedules:
        schedules += 1
        strategy.begin(rng)
        scheduler = Scheduler(strategy, max_steps, deadline)
        recorder = Recorder()
        with ProcessExitsRefused():  # os._exit in a task: a failure, not the end
            outcome: RunOutcome = driver.run(setup, tasks, invariant, scheduler, recorder)
        if outcome.kind is not None:
            events = tuple(recorder.events)
            return Result(
                failed=True,
                kind=outcome.kind,
                schedules=schedules,
                exhausted=False,
                schedule=encode_schedule(scheduler.choices),
                trace=render_table(names, events, outcome),
                message=outcome.message,
                seed=seed,
                strategy=strategy.name,
                seconds=time.monotonic() - started,
                task_names=names,
                events=events,
                outcome=outcome,
            )
        if not scheduler.choices:  # a single path: nothing else to explore
            exhausted = True
            break
        if not strategy.end(scheduler.steps, scheduler.trail or ()):
            exhausted = strategy.exhausted
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
    return Result(
        failed=False,
        kind=None,
        schedules=schedules,
        exhausted=exhausted,
        schedule=None,
        trace="",
        message="",
        seed=seed,
        strategy=strategy.name,
        seconds=time.monotonic() - started,
        task_names=names,
    )


def explore(
    setup: Callable[[], Any],
    tasks: Sequence[Callable[..., Any]],
    invariant: Callable[[Any], bool],
    *,
    strategy: str | None = None,
    max_schedules: int | None = None,
    seed: int | None = None,
    preemption_bound: int | None = None,
    timeout: float | None = None,
    granularity: str | None = None,
    max_steps: int | None = None,
    depth: int | Sequence[int] | None = None,
    include: Sequence[str] = (),
    reduction: bool | None = None,
) -> Result:
    """Run ``tasks`` under a controlled scheduler, schedule after schedule,
    until one breaks ``invariant`` (or raises, or deadlocks).

    Each schedule calls ``setup()`` for fresh shared state, runs every task
    as ``task(state)`` -- plain functions as real threads switched between
    bytecode instructions of your code, generator functions switched at
    ``yield``, async functions switched at each step of the event loop --
    and then checks ``invariant(state)``. Blocking primitives (locks,
    conditions, queues, events, ...) are under the scheduler's control:
    nothing really blocks and no timeout is guessed.

    ``strategy``: ``"pct"`` (default), ``"random"``, ``"pos"`` (partial-order
    sampling: a fresh random priority per step) or ``"dfs"``
    (exhaustive, optionally bounded by ``preemption_bound``); ``seed``
    makes the search reproducible (None: a fresh one, reported in the
    result); ``max_schedules`` and ``timeout`` (seconds) bound the search;
    ``max_steps`` bounds one schedule; ``depth`` is PCT's bug depth (a sequence: taken
    in turn, one per schedule). ``reduction`` (default on): ``dfs`` on
    thread tasks skips the schedules that only reorder steps touching
    nothing in common (partial-order reduction); ``exhausted`` is still a
    proof, within ``preemption_bound``.
    ``include``: names of modules (a package: with its submodules) whose
    code also gets switch points, for thread tasks -- by default the
    standard library, installed packages and critsec run without any, each
    call one step. ``include=("critsec.runtimes",)`` explores inside
    critsec's own lock, counter and queue; replay with the same ``include``.
    Settings left out come from the environment (``CRITSEC_MAX_SCHEDULES``
    and so on: :class:`~critsec.explorer.Settings`), else the defaults:
    pct, 1000 schedules, 100,000 steps, no timeout, opcode granularity.
    Blocks the calling thread until done.
    """
    settings = Settings.from_env().given(
        strategy=strategy,
        max_schedules=max_schedules,
        preemption_bound=preemption_bound,
        timeout=timeout,
        granularity=granularity,
        max_steps=max_steps,
        depth=None if depth is None else depth if isinstance(depth, int) else tuple(depth),
        reduction=reduction,
    )
    strategy, max_schedules, timeout = settings.strategy, settings.max_schedules, settings.timeout
    preemption_bound = settings.preemption_bound
    if preemption_bound is not None and strategy != "dfs":
        raise ValueError("preemption_bound applies to strategy='dfs' only")
    if isinstance(max_schedules, bool) or not isinstance(max_schedules, int):
        raise TypeError(f"max_schedules must be an int, got {type(max_schedules).__name__}")
    if max_schedules < 1:
        raise ValueError(f"max_schedules must be >= 1, got {max_schedules}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    return _search(
        setup,
        tasks,
        invariant,
        lambda driver: make_strategy(
            strategy,
            preemption_bound=preemption_bound,
            depth=settings.depth,
            reduction=settings.reduction and driver.describes_steps,
        ),
        max_schedules=max_schedules,
        seed=seed,
        timeout=timeout,
        granularity=settings.granularity,
        max_steps=settings.max_steps,
        include=include,
    )


def replay(
    setup: Callable[[], Any],
    tasks: Sequence[Callable[..., Any]],
    invariant: Callable[[Any], bool],
    schedule: str,
    *,
    granularity: str | None = None,
    max_steps: int | None = None,
    include: Sequence[str] = (),
) -> Result:
    """Run the one schedule ``schedule`` (a token from ``Result.schedule``)
    again: the same failure, the same trace, every time -- as long as the
    program, the Python running it and ``include`` are the same. Raises
    :class:`~critsec.explorer.ReplayMismatch` when the token does not fit.
    """
    choices = decode_schedule(schedule)
    settings = Settings.from_env().given(granularity=granularity, max_steps=max_steps)
    return _search(
        setup,
        tasks,
        invariant,
        lambda driver: ReplayStrategy(choices),
        max_schedules=1,
        seed=0,
        timeout=None,
        granularity=settings.granularity,
        max_steps=settings.max_steps,
        include=include,
    )
