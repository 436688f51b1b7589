"""The asyncio driver: ``async def`` tasks on an event loop the explorer steers.

Design
------
An asyncio program already runs one piece of code at a time: the event
loop takes the *ready handles* (callbacks) in FIFO order and runs each to
its next ``await`` that suspends. Which handle goes first is the only
scheduling freedom, and in a real program it depends on timing (I/O, how
long each step took). So the driver takes over exactly that choice.

:class:`ExploredLoop` is a selector event loop with two changes:

* ``_run_once`` (one iteration of the loop) first looks at the ready
  handles. Each one is attributed to the task it would resume -- a task's
  step and wake-up callbacks are methods bound to that task, so
  ``handle._callback.__self__`` names it. Callbacks that belong to no task
  (future done-callbacks, timers, ``call_soon`` of user callbacks) run
  without a decision; when only task handles are ready, the scheduler
  chooses one task (``Scheduler.branch``) and only its handle runs in this
  iteration; the others are held back and stay first in line. Then the
  inherited ``_run_once`` does the rest (timers, I/O polling, debug
  checks) -- the override only filters what it sees in ``_ready``.
* ``time()`` is virtual (:class:`~._clock.VirtualClock`, the one clock of
  every driver, which the tasks' own ``time.monotonic()`` and
  ``time.sleep()`` use too): it starts at 0.0 and, when nothing is ready but
  timers are pending, jumps to the earliest one. ``asyncio.sleep(1)``,
  ``asyncio.timeout`` and ``wait_for`` take no real time, and the same
  schedule sees the same times on every run. When nothing is ready and no
  timer is pending while tasks are unfinished, nothing can ever wake them:
  that is a deadlock, reported with what each task awaits and where.

Timers are a choice too, as a timed wait is in the other drivers: a ready
step may take longer than a waiting task has left, so the earliest pending
timer, when a task that awaits set it (``call_at``/``call_later`` during its
step: ``sleep``, ``wait_for``, ``timeout``), is offered to the scheduler
next to the ready tasks, as that task. Chosen, the clock jumps to it and it
fires before the ready steps run ("times out at 1 s waiting for ..."). Only
the earliest: while tasks compute, timers still expire in time order; and
when nothing is ready they fire in time order with no choice at all. A wait
that its own timer may end is, for fairness, the end of a round of a loop
like a bare ``await``: a task polling with ``await asyncio.sleep(0.1)``
that finds nothing changed spins, and the others run first.

Tasks that user code creates (``asyncio.create_task``, ``TaskGroup``) are
scheduled like the top-level ones (``create_task`` is overridden to number
them); their steps are shown in the column of the task that created them.

Trace. The generator driver's :class:`~._generators.StepTracer` records
what each step of a task does (lines, shared reads and writes); the step
ends in an ``await`` event where the task suspended, or a ``block`` event
saying what it waits for, found by walking the task's coroutine chain
(``cr_await``) past the user's innermost frame: ``lock released`` for
critsec's primitives, ``Lock.acquire() on <asyncio.locks.Lock ...>`` for
others. A task counts as blocked while it awaits a future (the task's
``_fut_waiter``, present in both the C and Python ``Task``).

Prior art and trade-offs. Test helpers such as aiotools' ``VirtualClock``
and the ``looptime`` plugin make a loop's time virtual by overriding
``time()``, as here. Choosing the order of ready handles needs the ready
queue itself, which only ``_run_once`` sees: the override is private API,
kept small (it filters ``_ready``, moves the clock, and leaves the rest to
the inherited method), and tested on CPython 3.11, 3.12 and 3.13, whose
``_run_once`` reads ``_ready``, ``_scheduled`` and ``time()`` the same way.
A task factory or ``sys.monitoring`` could attribute steps to tasks, but
cannot reorder them. asyncio's primitives (``Lock``, ``Event``,
``Condition``, ``Semaphore``, ``Queue``) and critsec's asyncio lock and
queue wait on futures, so they are controlled with no special case.

Limits. A schedule ends when the top-level tasks are done; tasks they
made and left running are then cancelled, as ``asyncio.run`` does. A timer
set by a callback, or by a task that is itself ready, fires only when
nothing else can run.
Real I/O, threads (``to_thread``, ``run_in_executor``) and other loops are
not controlled: waiting for them looks like a deadlock. ``explore`` cannot
be called from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .._errors import Wait, deadlock_report
from .._task import Task
from ..runtimes._asyncio import waits
from ..runtimes._cooperative import start_tasks
from ._access import describe_object
from ._clock import VirtualClock
from ._driver import Driver, RunOutcome, describe_exception, task_names
from ._fairness import Rounds
from ._generators import (
    StepTracer,
    is_user_code,
    suspended_frames,
    user_position,
    went_round,
    without_comment,
)
from ._scheduler import Scheduler
from ._trace import Event, Recorder

__all__ = ["AsyncioDriver", "ExploredLoop"]


class _Deadlock(Exception):
    """Raised out of the loop when nothing can ever run again."""


def awaiting(task: asyncio.Task[Any], name_of: Callable[[Any], str]) -> str:
    """What a suspended task waits for, for people: the condition of a critsec
    primitive, else the library call the user's code awaits, and on what
    object (named by ``name_of``)."""
    frames = suspended_frames(task.get_coro())
    library = [f for f in frames if not is_user_code(f.f_code)]
    for frame in library:
        wait = waits(frame)  # a critsec primitive's, on a named condition
        if wait is not None:
            return f"{wait[0]} on {name_of(wait[1])}"
    if library:
        # The innermost method call names the primitive best (Lock.acquire()
        # rather than the __aenter__ that called it); else the first call.
        methods = [f for f in library if "self" in f.f_locals]
        frame = methods[-1] if methods else library[0]
        owner = frame.f_locals.get("self")
        on = "" if owner is None else f" on {name_of(owner)} ({describe_object(owner)})"
        return f"{frame.f_code.co_qualname}(){on}"
    waiter = getattr(task, "_fut_waiter", None)
    return describe_object(waiter) if waiter is not None else "the event loop"


class ExploredLoop(asyncio.SelectorEventLoop):
    """An event loop that runs one schedule: one task step at a time, chosen
    by ``scheduler``, in virtual time (see the module docstring).

    Made and used by :class:`AsyncioDriver` only, on one thread, for one
    schedule; ``close_all()`` must be called when done (the driver does).
    """

    def __init__(self, scheduler: Scheduler, recorder: Recorder, names: Sequence[str]) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.recorder = recorder
        self.names = list(names)
        self.clock = VirtualClock()  # its time(); installed by the driver for the tasks
        self.units: dict[asyncio.Task[Any], int] = {}  # task -> its number for branch()
        self.column: dict[int, int] = {}  # unit -> the top-level task whose column shows it
        self.tasks: list[asyncio.Task[Any]] = []  # by unit number
        self.running: int | None = None  # the unit whose step runs now
        self.current: int | None = None  # the unit that ran last
        self.waits: dict[int, str] = {}  # unit -> what it blocked on
        #: id(timer handle) -> (the unit whose step set it, the handle)
        self.timer_owner: dict[int, tuple[int, asyncio.TimerHandle]] = {}
        self.deciding = True  # False while cleaning up: no decisions, no events
        self.failure: RunOutcome | None = None
        self.finished: asyncio.Future[None] | None = None  # set when the schedule ends
        self.tracer = StepTracer()
        self.rounds = Rounds(scheduler, self._name)
        self.set_exception_handler(self._on_error)

    # -- the two changes ------------------------------------------------------
    def time(self) -> float:
        return self.clock.time

    def _run_once(self) -> None:
        ready: Any = self._ready  # type: ignore[attr-defined]
        live = [h for h in ready if not h._cancelled]
        free = [h for h in live if self._unit(h) is None]
        owned = [h for h in live if self._unit(h) is not None]
        held: list[asyncio.Handle] = []
        chosen: int | None = None
        timed: tuple[int, float] | None = None  # a timer chosen to expire first
        if free or not owned:
            held = owned  # callbacks of no task first, then decide with all of them done
            if not free and not self._stopping:  # type: ignore[attr-defined]
                self._advance_clock()
        elif not self.deciding:
            held = owned[1:]
        else:
            units = {unit for h in owned if (unit := self._unit(h)) is not None}
            # A timer competes with the ready steps: they may take longer
            # than it has left (the module docstring: "Timers are a choice").
            racing = self._racing_timer(units)
            offered = sorted(units | ({racing[0]} if racing else set()))
            chosen = self.scheduler.branch(offered, self.current)
            if chosen in units:
                first = next(h for h in owned if self._unit(h) == chosen)
                held = [h for h in owned if h is not first]
            else:
                assert racing is not None and chosen == racing[0]
                timed, chosen, held = racing, None, owned
                self.clock.advance_to(racing[1])  # its time has come: it fires
        for handle in held:
            ready.remove(handle)
        try:
            if chosen is None:
                super()._run_once()  # type: ignore[misc]
            else:
                self._step(chosen, super()._run_once)  # type: ignore[misc]
        finally:
            ready.extendleft(reversed(held))  # still first in line, in their order
        if timed is not None:
            self._timer_fired(timed[0])

    # -- helpers ----------------------------------------------------------------
    def _unit(self, handle: asyncio.Handle) -> int | None:
        owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
        return self.units.get(owner) if isinstance(owner, asyncio.Task) else None

    def _timers(self) -> list[asyncio.TimerHandle]:
        """The pending timers."""
        return [h for h in self._scheduled if not h._cancelled]  # type: ignore[attr-defined]

    def _advance_clock(self) -> None:
        """Nothing is ready: jump to the earliest pending timer, or give up."""
        timers = self._timers()
        if not timers:
            raise _Deadlock
        self.clock.advance_to(min(h.when() for h in timers))

    def call_at(  # type: ignore[override]  # typeshed's is generic over the args
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        if self.running is not None:  # set by a task's step: that task's timer
            self.timer_owner[id(handle)] = (self.running, handle)
        return handle

    def _timer_unit(self, handle: asyncio.TimerHandle) -> int | None:
        """The unit whose step set ``handle``, or None (a callback's)."""
        owner = self.timer_owner.get(id(handle))
        return owner[0] if owner is not None and owner[1] is handle else None

    def _has_timer(self, unit: int) -> bool:
        """Whether ``unit`` set a timer that is still pending."""
        return any(self._timer_unit(h) == unit for h in self._timers())

    def _racing_timer(self, ready: set[int]) -> tuple[int, float] | None:
        """``(unit, when)`` of the earliest pending timer if a task that is
        not ready (it awaits) set it: the one timer that can expire while
        the ready steps run. None if the earliest timer is no such task's."""
        timers = self._timers()
        if not timers:
            return None
        first = min(timers, key=lambda h: h.when())
        unit = self._timer_unit(first)
        if unit is None or first.when() <= self.clock.time:
            return None  # not a task's, or due anyway in this iteration
        if unit in ready or unit not in self.waits or self.tasks[unit].done():
            return None
        return unit, first.when()

    def _timer_fired(self, unit: int) -> None:
        """Record that the scheduler let ``unit``'s timer expire before the
        ready steps: it timed out of its wait, or its timer merely fired."""
        self.current = unit
        task, column = self.tasks[unit], self.column[unit]
        where, source = user_position(suspended_frames(task.get_coro()))
        woken = any(self._unit(h) == unit for h in self._ready if not h._cancelled)  # type: ignore[attr-defined]
        if woken:
            text = f"times out at {self.clock.time:g} s waiting for {self.waits.pop(unit)}"
        else:
            text = f"its timer fires at {self.clock.time:g} s (still awaiting {self.waits[unit]})"
        self.recorder.record(Event(column, "wake", self._label(unit, text), where, source))

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        unit = len(self.tasks)
        if kwargs.get("name") is None:
            # asyncio's default names count every task the process ever made
            # ("Task-108"): a trace must read the same on every run.
            kwargs["name"] = f"{getattr(coro, '__name__', 'task')}-{unit}"
        task = super().create_task(coro, **kwargs)
        self.tasks.append(task)
        self.units[task] = unit
        # Shown in the column of the task that made it (a top-level task: its own).
        parent = self.running
        top = min(unit, len(self.names) - 1)
        self.column[unit] = self.column[parent] if parent is not None else top
        task.add_done_callback(self._settle)
        return task

    def _label(self, unit: int, text: str) -> str:
        """Steps of a task made by user code are marked with its name."""
        return text if unit < len(self.names) else f"[{self.tasks[unit].get_name()}] {text}"

    def _step(self, unit: int, run: Callable[[], None]) -> None:
        """Run the chosen task's step (one loop iteration), recording its events."""
        task, column = self.tasks[unit], self.column[unit]
        self.current = self.running = unit
        if unit in self.waits:
            frames = suspended_frames(task.get_coro())
            where, source = user_position(frames)
            text = self._label(unit, f"woken: {self.waits.pop(unit)}")
            self.recorder.record(Event(column, "wake", text, where, source))
        try:
            self.tracer.run(column, run)
        except SystemExit:
            # asyncio lets a task's SystemExit (sys.exit(), a refused
            # os._exit: see _exits) out of the loop; the task holds it as its
            # exception, a failure like any other.
            if not task.done():
                raise
        finally:
            self.running = None
        if task.done():
            self.rounds.progressed(unit)
            self._finished(unit, task)
            return
        frames = suspended_frames(task.get_coro())
        where, source = user_position(frames)
        events = self.tracer.take(where)
        for event in events:
            self.recorder.record(event)
        blocked = getattr(task, "_fut_waiter", None) is not None
        if blocked:
            what = awaiting(task, self.tracer.name_of)
            self.waits[unit] = what
            event = Event(column, "block", self._label(unit, f"awaits {what}"), where, source)
        else:
            text = self._label(unit, without_comment(source) or "await")
            event = Event(column, "await", text, where, source)
        if blocked and not self._has_timer(unit):
            self.rounds.progressed(unit)  # a wait only another task can end
        else:
            # A bare await, or a wait its own timer may end at any choice
            # (`while not s.ready: await asyncio.sleep(0.1)`): the end of a
            # round of a loop, maybe one that spins.
            livelock = went_round(self.rounds, unit, frames, events, (where, source))
            if livelock is not None and self.failure is None and self.deciding:
                self.failure = livelock
                if self.finished is not None and not self.finished.done():
                    self.finished.set_result(None)
        self.recorder.record(event)

    def _name(self, unit: int) -> str:
        return self.names[unit] if unit < len(self.names) else self.tasks[unit].get_name()

    def _finished(self, unit: int, task: asyncio.Task[Any]) -> None:
        column = self.column[unit]
        for event in self.tracer.take(""):
            self.recorder.record(event)
        if task.cancelled():
            self.recorder.record(Event(column, "return", self._label(unit, "cancelled")))
            return
        top = unit < len(self.names)
        # A task made by user code may fail on purpose, for its awaiter to
        # handle: its exception is peeked at, not retrieved (see explore()).
        exc = task.exception() if top else getattr(task, "_exception", None)
        if exc is None:
            text = self._label(unit, f"returns {describe_object(task.result())}"[:70])
            self.recorder.record(Event(column, "return", text))
            return
        line, detail = describe_exception(exc)
        text = self._label(unit, f"raises {line}")
        self.recorder.record(Event(column, "raise", text, detail=detail))
        if top and self.failure is None:
            message = f"task {self.names[unit]!r} raised {line}"
            self.failure = RunOutcome("exception", message, detail, column)

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An error asyncio would only log (a failing callback, a task exception
        never retrieved) fails the schedule instead of passing unnoticed."""
        if not self.deciding or self.failure is not None:
            return
        exc = context.get("exception")
        message = str(context.get("message", "error in the event loop"))
        detail = describe_exception(exc)[1] if isinstance(exc, BaseException) else ""
        self.failure = RunOutcome("exception", message, detail)

    # -- one schedule -------------------------------------------------------------
    def _settle(self, _: asyncio.Task[Any]) -> None:
        """Ends the schedule once a task failed or every top-level task is done."""
        finished = self.finished
        if finished is None or finished.done():
            return
        if self.failure is not None or all(t.done() for t in self.tasks[: len(self.names)]):
            finished.set_result(None)

    def explore(self, coroutines: Sequence[Coroutine[Any, Any, Any]]) -> RunOutcome:
        """Run the top-level tasks until all finished, one task (of any) raised,
        or none can run."""
        for coroutine, name in zip(coroutines, self.names, strict=True):
            self.create_task(coroutine, name=name)
        self.finished = self.create_future()
        try:
            with self.tracer.installed():
                self.run_until_complete(self.finished)
        except _Deadlock:
            return self._deadlock()
        except SystemExit as exc:  # from a callback, not a task: still no pass
            line, detail = describe_exception(exc)
            return RunOutcome("exception", f"the event loop raised {line}", detail)
        return self.failure or self._unretrieved() or RunOutcome()

    def _unretrieved(self) -> RunOutcome | None:
        """A failure for the first task made by user code that raised with
        nobody retrieving its exception (asyncio would only log it later)."""
        for unit, task in enumerate(self.tasks[len(self.names) :], len(self.names)):
            # `_log_traceback`: set while a task's exception was not retrieved
            # (C and Python tasks alike).
            if task.done() and not task.cancelled() and getattr(task, "_log_traceback", False):
                line, detail = describe_exception(task.exception())  # type: ignore[arg-type]
                message = f"task {task.get_name()!r} raised {line}, and no task awaited it"
                return RunOutcome("exception", message, detail, self.column[unit])
        return None

    def _deadlock(self) -> RunOutcome:
        waits = []
        for unit, task in enumerate(self.tasks):
            if task.done():
                continue
            name = self.names[unit] if unit < len(self.names) else task.get_name()
            where = user_position(suspended_frames(task.get_coro()))
            waits.append(Wait(name, awaiting(task, self.tracer.name_of), *where))
        return RunOutcome("deadlock", *deadlock_report(waits))

    def close_all(self) -> None:
        """Cancel what is left, let it unwind (no decisions, nothing recorded),
        and close the loop. Never raises for the program's misbehaviour."""
        self.deciding = False
        self.recorder = _DISCARD
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        try:
            if pending:
                gathered = asyncio.gather(*pending, return_exceptions=True)
                try:
                    self.run_until_complete(gathered)
                except _Deadlock:
                    gathered.cancel()  # a task that will not end when cancelled: abandon it
            self.run_until_complete(self.shutdown_asyncgens())
        except _Deadlock:
            pass
        finally:
            for task in self.tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: no "never retrieved" log at exit
            self.close()


class _Discard(Recorder):
    def record(self, event: Event) -> None:
        pass


_DISCARD = _Discard()


class AsyncioDriver(Driver):
    """Runs one schedule of ``async def`` tasks (see the module docstring).

    Called by the explorer only; ``run`` blocks the calling thread (which
    must not be running an event loop) until the schedule ends, and
    guarantees that every task is finished or cancelled and the loop closed,
    however it ends -- also when ``branch`` raises ``ExplorationLimit``.
    """

    kind = "async"

    def run(
        self,
        setup: Callable[[], Any],
        tasks: Sequence[Callable[[Any], Any]],
        invariant: Callable[[Any], bool],
        scheduler: Scheduler,
        recorder: Recorder,
    ) -> RunOutcome:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "explore() runs asyncio tasks on an event loop of its own and cannot be called "
                "from inside a running one: call it from synchronous code (a plain test function)"
            )
        names = task_names(tasks)
        loop = ExploredLoop(scheduler, recorder, names)
        # setup(), the tasks and the invariant all read the loop's clock.
        with loop.clock.installed():
            try:
                state = setup()
                coroutines = start_tasks(
                    [Task(fn, (state,), name=name) for fn, name in zip(tasks, names, strict=True)],
                    "async",
                )
                outcome = loop.explore(coroutines)
            finally:
                loop.close_all()
            if outcome.kind is not None:
                return outcome
            return self.check_invariant(invariant, state)
