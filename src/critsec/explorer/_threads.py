"""The threads driver: real ``threading`` threads, one running at a time,
switched between bytecode instructions of the user's code.

Design
------
Each task runs on a real thread, so it has a real stack, real thread-local
state, and calls into C and the standard library exactly as in production.
What the explorer takes away is the operating system's choice of *when*
threads switch. Every task thread sleeps on its own real lock -- its baton
-- and runs only while it holds it; at every switch point the running task
asks ``Scheduler.branch`` who runs next and, if that is another task, hands
the baton over and sleeps until it gets it back. Exactly one thread runs
user code at any moment, so the run is as deterministic as the choices.

Switch points are the instructions of the *user's* code (whose code is
which: :mod:`._usercode`), placed by a backend (:mod:`._backends`:
``sys.monitoring`` instruction events on 3.12+, ``sys.settrace`` opcode
events on 3.11) -- or only its line starts with ``granularity="line"``.
Not every instruction: only those another task could observe
(:mod:`._points`). Library code runs without switch points: a
``queue.Queue.put`` is one step for the explorer.

Blocking never really blocks: the standard primitives are replaced, during
a schedule, by controlled ones (:mod:`._patches`) through which a task that
must wait tells the driver what it waits for; it is not runnable until
that is ready. When no task is runnable and some are unfinished, the
schedule ends in a deadlock, reported with who waits for what and where.

Tracing and the trace (:mod:`._steps`). At each switch point, the
per-code-object analysis of :mod:`._access` says whether the instruction
reads or writes shared state -- a global, a closure variable, an attribute, a subscript --
and on which object; what that shows in the trace is decided by the
recorder every driver shares (:mod:`._recording`): the value peeked
without side effects, a write once it is there (at the thread's next
event), a property's value from its getter's return or its setter's
argument (caught here as a library call), objects named by where they
were first read from (``State.lock``) or by type and order of first
sight (``Counter#2``), never by address, so the same schedule gives the
same trace. The same step's footprint, for partial-order reduction, is
:mod:`._footprints`'.

Cleaning up. A schedule ends with every task thread gone: a task the
schedule gives up on (a deadlock, another task's failure, a step limit) is
resumed with orders to raise :class:`~._patches.Abandoned` where it
sleeps, and unwinds; the driver waits for each in turn.

Limits (candid, loom-style):

* primitives created during a schedule (in ``setup`` or a task) are
  controlled, and so are stand-ins for the free locks made before it that
  the scenario's modules keep as globals or its functions close over
  (:class:`~._patches.StandIns`); a task touching another one made before
  (an attribute of an object made at import time) fails at once with
  :class:`~._patches.UncontrolledPrimitive` and a hint, instead of really
  blocking;
* the user's code that a library calls back (a ``cached_property`` getter,
  a ``logging.Formatter``, a ``contextmanager`` body) runs as part of that
  library call, with no switch point: a switch there could leave the
  library's own real lock held while another task blocks on it;
* tasks must not start threads of their own (refused with an error);
* mutation through C methods (``list.append``) is interleaved correctly
  (a call is a switch point) but not shown as a write in the trace; reads
  and writes are shown at opcode granularity only;
* a library call is one step: a bug *inside* a library's own locking is
  not explored, only how the user's code uses it;
* a task that catches ``BaseException`` and loops forever cannot be
  abandoned, and the schedule then never ends.
"""

from __future__ import annotations

import _thread
import bisect
import os
import sys
import threading
import types
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .._errors import Wait, deadlock_report
from . import _patches
from ._access import (
    MISSING,
)
from ._backends import BACKEND, BACKENDS, Monitoring, Tracer
from ._clock import (
    VirtualClock,
    _real_monotonic,  # the driver's watchdog: never the virtual clock
)
from ._dpor import Footprint
from ._driver import Driver, RunOutcome, ScheduleStalled, describe_exception, task_names
from ._fairness import Rounds
from ._footprints import sync_places
from ._launch import on_one_cpu, start_all
from ._patches import Abandoned, Control, StandIns, Waitable, Window
from ._points import CodeInfo
from ._scheduler import Scheduler
from ._steps import Steps, where
from ._trace import Event, Recorder
from ._usercode import EXPLORE_DIR, default_user_code

__all__ = ["BACKEND", "BACKENDS", "ThreadDriver"]

_allocate_baton = _thread.allocate_lock  # never the patched one

#: Seconds without a step after which the watchdog stops a schedule (see
#: ``_Schedule.go``): no step of a schedule takes that long unless a task
#: blocks for real.
STALL_SECONDS = 30.0

# -- one task ---------------------------------------------------------------------------


class _Task:
    """A task of one schedule, and the thread it runs on."""

    def __init__(self, index: int, name: str, fn: Callable[[Any], Any]) -> None:
        self.index = index
        self.name = name
        self.fn = fn
        self.baton = _allocate_baton()
        self.baton.acquire()  # taken: the thread sleeps on it until granted
        self.thread: threading.Thread | None = None
        self.finished = False
        self.abandoned = False
        self.waiting: Waitable | None = None
        self.deadline: float | None = None
        self.blocked_at = ("", "")  # (where, source) of the user's frame that waits
        self.blocked_in = ""  # " (in State.barrier.wait)": the library call it waits in
        # What it did since it last started a round of a loop: (kind, text)
        # of its events, for spin detection (._fairness).
        self.round: list[tuple[str, str]] = []
        # What its steps loaded, called, iterated (see _footprints.footprint).
        self.memo: dict[tuple[int, Any], Any] = {}
        self.begun = False  # it had its first grant
        # Where it waits for its turn at a switch point of the user's code,
        # when steps are described (see Steps.pending).
        self.at: tuple[types.FrameType, int] | None = None
        # The step of a store under way, and the one place it stores into:
        # what it stored goes on its footprint once it ran (see Steps.settle).
        self.storing: tuple[Footprint, Hashable] | None = None


# -- one schedule -------------------------------------------------------------------------


class _Schedule(Control):
    """The mechanics of one schedule: batons, the runnable set, events, and
    the controlled primitives' :class:`~._patches.Control`. What each
    instruction of a task means (a switch point, a read, a footprint) is
    :class:`~._steps.Steps`'; it calls :meth:`switch` and :meth:`event`.

    Methods marked "task thread" run on the task that holds the baton;
    the others on the thread that called ``ThreadDriver.run``.
    """

    def __init__(
        self,
        driver: ThreadDriver,
        tasks: Sequence[Callable[[Any], Any]],
        scheduler: Scheduler,
        recorder: Recorder,
    ) -> None:
        self.driver = driver
        self.scheduler = scheduler
        self.recorder = recorder
        self.tasks = [
            _Task(i, name, fn)
            for i, (name, fn) in enumerate(zip(task_names(tasks), tasks, strict=True))
        ]
        self.by_ident: dict[int, _Task] = {}
        # The runnable set, kept as tasks start and stop waiting and finish
        # rather than rebuilt from every task at each step (a 101-thread
        # step spent a third of its time there): the unfinished tasks that
        # wait for nothing, in order, and those that wait.
        self.free = list(range(len(self.tasks)))
        self.waiters: dict[int, _Task] = {}
        self.driver_ident = threading.get_ident()
        self.driver_baton = _allocate_baton()
        self.driver_baton.acquire()
        self.state: Any = None
        self.last: int | None = None
        self.outcome: RunOutcome | None = None
        self.error: BaseException | None = None
        self.aborting = False
        self.haste = False  # abandoned without waiting for each thread
        self.clock = VirtualClock()  # time.monotonic and sleeps of the tasks (_patches)
        self.labels: dict[str, int] = {}
        self.backend: Monitoring | None = None  # None: sys.settrace
        self.rounds = Rounds(scheduler, lambda task: self.tasks[task].name)
        #: What each instruction the tasks run means: switch point, access,
        #: footprint (the backend calls it).
        self.steps = Steps(self)
        self.info = self.steps.info
        if self.steps.reducing:
            scheduler.pending = self.steps.pending

    # -- Control (called by the controlled primitives) --------------------------------

    def task(self) -> int | None:
        t = self.by_ident.get(threading.get_ident())
        return None if t is None or t.finished else t.index

    def controls_thread(self) -> bool:
        return self.task() is not None or threading.get_ident() == self.driver_ident

    def now(self) -> float:
        return self.clock.time

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def label(self, kind: str) -> str:
        number = self.labels.get(kind, 0) + 1
        self.labels[kind] = number
        return f"{kind} #{number}"

    def task_name(self, task: int) -> str:
        if task == _patches.SETUP:
            return "setup (the thread running setup and the invariant)"
        return f"task {self.tasks[task].name!r}"

    def finished(self, task: int) -> bool:
        return self.tasks[task].finished

    def sync(self, kind: str, text: str, location: str) -> None:
        me = self.task()
        if me is None or self.aborting:
            return
        frame = self._caller_frame()
        if frame is not None:
            self.event(self.tasks[me], kind, text, where(frame), location=location)

    def block(self, task: int, waitable: Waitable, deadline: float | None) -> bool:
        """Task thread: wait for ``waitable`` as a scheduler decision."""
        t = self.tasks[task]
        if t.abandoned:
            raise Abandoned
        t.waiting, t.deadline = waitable, deadline
        self.free.remove(t.index)
        self.waiters[t.index] = t
        frame, api = self._user_frame()
        t.blocked_at = where(frame) if frame is not None else ("", "")
        t.blocked_in = ""
        if api is not None and not api.f_code.co_filename.startswith(EXPLORE_DIR):
            obj = api.f_locals.get("self", MISSING)
            owner = "" if obj is MISSING else f"{self.steps.names.of(obj)}."
            t.blocked_in = f" (in {owner}{api.f_code.co_name})"
        what = waitable.describe() + t.blocked_in
        self.event(t, "block", f"waits for {what}", t.blocked_at)
        self.rounds.progressed(t.index)  # waiting by blocking, not by spinning
        try:
            self.switch(t)
        finally:
            t.waiting = None
            del self.waiters[t.index]
            bisect.insort(self.free, t.index)
        if self.steps.reducing and isinstance(waitable, _patches.Lock | _patches.RLock):
            condition = waitable._waiter_of
            if condition is not None:
                # Woken by a notify, in Condition.wait: this step takes its
                # waiter lock (only notify touches it) and then, unless it
                # blocks again, the condition's lock: the condition's places.
                places = sync_places(condition)
                if places is not None:
                    self.scheduler.declare(writes=places)
            elif not t.blocked_in:
                # Woken in a lock the user's code takes itself: this step takes it.
                self.scheduler.declare(writes=[("obj", id(waitable))])
        if waitable.ready():
            self.event(t, "wake", "wakes", t.blocked_at)
            return True
        assert deadline is not None  # only a timed wait is runnable while not ready
        self.clock.advance_to(deadline)
        self.event(t, "wake", f"times out waiting for {what}", t.blocked_at)
        return False

    # -- frames -------------------------------------------------------------------------

    def _caller_frame(self) -> types.FrameType | None:
        """The frame that called into the primitives (skipping this package's
        frames) if it is the user's, else None: a lock taken inside
        ``queue.Queue.put`` is the queue's business, not a trace step."""
        frame: types.FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.startswith(EXPLORE_DIR):
            frame = frame.f_back
        if frame is None or self.info(frame.f_code) is None:
            return None
        return frame

    def _user_frame(self) -> tuple[types.FrameType | None, types.FrameType | None]:
        """The innermost frame of the user's code on the calling stack, and
        the library frame it called (``Barrier.wait``), if any."""
        frame: types.FrameType | None = sys._getframe(2)
        called = None
        while frame is not None and self.info(frame.f_code) is None:
            called, frame = frame, frame.f_back
        return frame, called

    def event(self, t: _Task, kind: str, text: str, at: tuple[str, str], **fields: Any) -> None:
        if not self.aborting:
            t.round.append((kind, text))
            self.recorder.record(Event(t.index, kind, text, at[0], at[1], **fields))

    # -- switching ------------------------------------------------------------------------

    def _runnable(self) -> list[int]:
        if not self.waiters:
            return self.free[:]
        ready = [
            i
            for i, t in self.waiters.items()
            if t.deadline is not None or t.waiting.ready()  # type: ignore[union-attr]
        ]
        return sorted(self.free + ready) if ready else self.free[:]

    def _decide(self, only: int | None = None) -> int | None:
        """Who runs next: a task index, or None to hand control to the driver
        (everything finished, a failure, a deadlock, or a scheduler error).
        ``only``: a step that is no decision (just counted)."""
        if self.outcome is not None or self.error is not None:
            return None
        runnable = self._runnable() if only is None else [only]
        if not runnable:
            return None
        try:
            return self.scheduler.branch(runnable, self.last, continues=only is not None)
        except BaseException as exc:  # ExplorationLimit, ReplayMismatch: the driver re-raises
            self.error = exc
            return None

    def _grant(self, nxt: int | None) -> None:
        """Wake ``nxt`` (None: the driver). The caller must not touch the
        schedule afterwards, except to sleep on its own baton."""
        if nxt is None:
            self.driver_baton.release()
        else:
            self.last = nxt
            self.tasks[nxt].baton.release()

    def switch(self, t: _Task, forced: bool = False) -> None:
        """Task thread, at a switch point: let the scheduler pick; if another
        task (or the driver) is picked, sleep until ``t`` is picked again.
        ``forced``: ``t`` goes on (unless the schedule is over); a step is
        counted all the same."""
        if t.abandoned:
            raise Abandoned
        nxt = self._decide(t.index if forced else None)
        if nxt == t.index:
            return
        self._grant(nxt)
        t.baton.acquire()
        if t.abandoned:
            raise Abandoned

    def thread_main(self, t: _Task) -> None:
        self.by_ident[threading.get_ident()] = t
        t.baton.acquire()  # the first grant
        t.begun = True
        try:
            if t.abandoned:
                return
            if self.steps.reducing and self.steps.starts_quietly(t.fn):
                # Its first step: the call of the user's function, up to its
                # first switch point (a library's function would be opaque).
                self.scheduler.declare()
            if self.backend is None:  # sys.settrace: per thread, installed here
                sys.settrace(Tracer(self, t).on_call)
            try:
                t.fn(self.state)
            finally:
                if self.backend is None:
                    sys.settrace(None)
            self.steps.settle(t)
            self.event(t, "return", "returns", ("", ""))
        except Abandoned:
            pass
        except BaseException as exc:  # a task's failure is the schedule's outcome
            if not t.abandoned:
                line, detail = describe_exception(exc)
                tb = exc.__traceback__
                frames = [f for f, _ in _walk_tb(tb) if self.info(f.f_code) is not None]
                at = where(frames[-1]) if frames else ("", "")
                self.event(t, "raise", line, at, detail=detail)
                self.outcome = RunOutcome("exception", line, detail, t.index)
        finally:
            t.finished = True
            self.free.remove(t.index)
            self.rounds.progressed(t.index)
            if t.abandoned:
                if not self.haste:
                    self.driver_baton.release()  # the driver waits for each unwinding
            else:
                self._grant(self._decide())

    def start(self) -> None:
        """Driver: start every task's thread, parked on its baton. They are
        launched without waiting for each to come up, then waited for
        together: ``Thread.start`` waits for every thread in turn, which
        was half of what a 101-thread schedule cost (see ``_launch.start_all``)."""
        for t in self.tasks:
            t.thread = threading.Thread(
                target=self.thread_main, args=(t,), name=f"critsec-task-{t.name}", daemon=True
            )
        start_all([t.thread for t in self.tasks if t.thread is not None])

    def go(self) -> None:
        """Driver: run the schedule until every task finished, one failed, a
        deadlock, or a scheduler error; blocks until then. Raises
        :class:`ScheduleStalled` when the running task makes no step for
        ``STALL_SECONDS``, or for half a second once the search's deadline
        passed: it blocks for real (the watchdog)."""
        self._grant(self._decide())
        steps, since = -1, _real_monotonic()
        while not self.driver_baton.acquire(timeout=0.1):
            now = _real_monotonic()
            if self.scheduler.steps != steps:
                steps, since = self.scheduler.steps, now
                continue
            deadline = self.scheduler.deadline
            stuck = now - since
            if stuck >= STALL_SECONDS or (
                deadline is not None and now >= deadline and stuck >= 0.5
            ):
                raise self._stalled(stuck)

    def _stalled(self, seconds: float) -> ScheduleStalled:
        """The watchdog's error: who stopped, and where."""
        t = self.tasks[self.last] if self.last is not None else None
        frame = None
        if t is not None and t.thread is not None and t.thread.ident is not None:
            frame = sys._current_frames().get(t.thread.ident)
        inner, user = frame, frame
        while user is not None and self.info(user.f_code) is None:
            user = user.f_back
        place = ""
        if user is not None:
            at, source = where(user)
            place = f" at {at}: {source}"
            if inner is not None and inner is not user:
                code = inner.f_code
                place += f" (in {code.co_qualname}, {os.path.basename(code.co_filename)})"
        who = f"task {t.name!r}" if t is not None else "the schedule"
        return ScheduleStalled(
            f"{who} made no step for {seconds:.1f} s{place}: it blocks for real on something the "
            "explorer does not control (I/O; a lock or queue made before explore and kept in an "
            "object, not made in setup()), or runs one call for that long. The schedule was "
            "abandoned; a thread still blocked in that call ends when the call returns"
        )

    def conclude(self) -> RunOutcome | None:
        """Driver, after ``go``: the failure, or None if every task finished."""
        if self.outcome is not None or self.error is not None:
            return self.outcome
        stuck = [t for t in self.tasks if not t.finished]
        if not stuck:
            return None
        waits = [
            Wait(
                t.name,
                t.waiting.describe() + t.blocked_in if t.waiting is not None else "?",
                *t.blocked_at,
            )
            for t in stuck
        ]
        return RunOutcome("deadlock", *deadlock_report(waits))

    def abandon(self) -> None:
        """Driver: unwind every unfinished task, one at a time (each raises
        :class:`Abandoned` where it sleeps), so that no thread outlives the
        schedule."""
        self.aborting = True
        for t in self.tasks:
            if not t.finished:
                t.abandoned = True
                t.baton.release()
                self.driver_baton.acquire()

    def abandon_in_haste(self) -> None:
        """Driver, when it was interrupted (a signal) while a task may be
        running: wake everyone with orders to unwind; do not wait."""
        self.aborting = self.haste = True
        for t in self.tasks:
            t.abandoned = True
            if t.baton.locked():
                try:
                    t.baton.release()
                except RuntimeError:
                    pass

    def join(self) -> None:
        for t in self.tasks:
            if t.thread is not None:
                t.thread.join()


def _walk_tb(tb: types.TracebackType | None) -> list[tuple[types.FrameType, int]]:
    out = []
    while tb is not None:
        out.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return out


# -- the driver -------------------------------------------------------------------------------


class ThreadDriver(Driver):
    """Runs plain-function tasks as real threads, one at a time, switched by
    the scheduler between the user's bytecode instructions (``granularity
    ="opcode"``) or source lines (``"line"``).

    ``user_code(filename) -> bool`` says in which files switch points are
    placed (default :func:`default_user_code`). ``backend``: how switch
    points are placed, ``"monitoring"`` (``sys.monitoring``, 3.12+) or
    ``"settrace"``; default :data:`BACKEND`. Called by ``explore`` and
    ``replay`` from one thread; ``run`` blocks that thread until the
    schedule ended and every task thread is gone.
    """

    kind = "blocking"

    @property
    def describes_steps(self) -> bool:
        return self.granularity == "opcode"

    def __init__(
        self,
        granularity: str = "opcode",
        user_code: Callable[[str], bool] = default_user_code,
        backend: str | None = None,
    ) -> None:
        if granularity not in ("opcode", "line"):
            raise ValueError(f"unknown granularity {granularity!r}; valid: opcode, line")
        backend = backend or BACKEND
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid here: {', '.join(BACKENDS)}")
        self.granularity = granularity
        self.user_code = user_code
        self.backend = backend
        # code object -> analysis (None: not the user's), kept across schedules.
        self._codes: dict[types.CodeType, CodeInfo | None] = {}
        # Code neither the user's nor a synchronisation call (Tracer.on_call).
        self._quiet: set[types.CodeType] = set()

    def run(
        self,
        setup: Callable[[], Any],
        tasks: Sequence[Callable[[Any], Any]],
        invariant: Callable[[Any], bool],
        scheduler: Scheduler,
        recorder: Recorder,
    ) -> RunOutcome:
        """Run one schedule (see :class:`~._driver.Driver`). Exceptions of
        ``setup`` and of the scheduler (``ExplorationLimit``,
        ``ReplayMismatch``) propagate once every task thread has ended."""
        Window.ensure_free()  # before starting threads that would be left behind
        with on_one_cpu():
            return self._run(_Schedule(self, tasks, scheduler, recorder), setup, invariant)

    def _run(
        self, schedule: _Schedule, setup: Callable[[], Any], invariant: Callable[[Any], bool]
    ) -> RunOutcome:
        schedule.start()  # before the window: Thread.start uses real primitives
        outcome: RunOutcome | None = None
        try:
            with (
                Window(schedule),
                StandIns([setup, invariant, *(t.fn for t in schedule.tasks)]),
                self._placing_switch_points(schedule),
            ):
                # Only an interruption (a signal) while tasks run leaves a task
                # that may be running: then no waiting for it. Otherwise every
                # unfinished task sleeps on its baton and unwinds when told.
                interrupted = False
                try:
                    schedule.state = setup()
                    interrupted = True
                    schedule.go()
                    interrupted = False
                    outcome = schedule.conclude()
                finally:
                    if interrupted:
                        schedule.abandon_in_haste()
                    else:
                        schedule.abandon()
                if schedule.error is not None:
                    raise schedule.error
                if outcome is None:
                    outcome = self.check_invariant(invariant, schedule.state)
        finally:
            if not schedule.haste:  # after an interrupt, a running task may never stop
                # Done already, unless the window or the switch points could not
                # be set up (no free sys.monitoring tool id): then the tasks
                # still wait for their first grant, and join() would never end.
                schedule.abandon()
                schedule.join()
        return outcome

    def _placing_switch_points(self, schedule: _Schedule) -> AbstractContextManager[Any]:
        if self.backend == "settrace":
            return nullcontext()  # each task thread installs its tracer itself
        schedule.backend = Monitoring(schedule)
        return schedule.backend
