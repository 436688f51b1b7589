"""The generator driver: generator tasks switching at ``yield``, under the explorer.

Design
------
A generator task can only be suspended where it yields, so the driver
needs no threads and no tracing to stay in control: it resumes one task
with ``send(None)`` and gets control back at that task's next ``yield``.
Every ``yield`` is therefore a switch point, and before each resumption
the driver asks ``Scheduler.branch`` which task goes next (the
``granularity`` option of the thread driver does not apply). This is the
coroutines runtime (``critsec.runtimes._coroutines``) with its round-robin
or random order replaced by the explorer's decision; the runtime's task
checks (``start_tasks``) and its notion of a runnable task
(``_Running.ready``) are reused, not copied.

Waiting. critsec's coroutine primitives (``CoroutineLock``,
``CoroutineQueue``) wait by yielding a ``Park`` -- "resume me once
``condition`` is notified, or at ``deadline``". A parked task is not
runnable until a notify wakes it. A park with a deadline is different: in
a real run the time may run out at any moment while others work, so the
driver offers the timeout as one more choice: the task is runnable, and if
the scheduler picks it before it was woken, its timeout fires. Time is
virtual (:class:`~._clock.VirtualClock`, the one clock of every driver):
the clock jumps to that deadline, so the lock and queue algorithms in
``_core`` see the time ran out, and nothing really sleeps; a task's own
``time.monotonic()`` reads the same clock, and its ``time.sleep()`` moves
it (a task that sleeps holds up every other, as in a real run). The clock
starts at 0.0 for every schedule, so times are the same floats on every
run and replay stays exact.

Trace. A ``sys.settrace`` function (:class:`StepTracer`), installed for
the schedule, follows only the user's own frames -- not critsec's
primitives, the standard library or installed packages -- and records, for
each step of a task, the source lines it ran and the shared values it read
and wrote (globals, closure variables, attributes and subscripts,
Lincheck's ``State.value ➜ 0`` and ``State.value = 1``), so the trace can
mark the read/write pairs that conflicted (what an access shows is
decided by the recorder every driver shares, :mod:`._recording`). The
step ends in a ``yield``
event (or a ``block`` event naming what a park waits for) at the innermost
line of the user's code where the task stopped. Which bytecode instruction
touches what, and the values, come from :mod:`._access`, shared with the
thread driver: a trace function cannot see the value stack, so it is
worked out once per code object from ``dis``, and values are peeked without
running code -- a property's value is its getter's return (its setter's
argument), caught when the tracer sees that call. Tracing is only for the
trace: switch points are the yields, whatever the tracer sees. The asyncio
driver uses the same tracer.

Limits. A task that loops without yielding cannot be interrupted (it hangs
the schedule, as it would hang the runtime). Mutating methods
(``list.append``) are not shown as writes. The schedule's tracer replaces
any other ``sys.settrace`` user (a debugger, coverage's C tracer) on this
thread while it runs. Anything a task does besides yielding -- I/O, other
threads, ``time.time()`` -- is outside the explorer's control and may make
schedules irreproducible (``dfs`` reports that as a ``ReplayMismatch``).
"""

from __future__ import annotations

import functools
import linecache
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from .._errors import Wait, deadlock_report
from .._task import Task
from ..runtimes._cooperative import start_tasks
from ..runtimes._coroutines import Park, _Running, bad_yield, forgotten
from ._access import (
    analyse,
    describe_object,
    short,
)
from ._backends import return_tracer
from ._clock import VirtualClock
from ._driver import Driver, RunOutcome, describe_exception, task_names
from ._fairness import Rounds
from ._recording import Accesses
from ._scheduler import Scheduler
from ._trace import Event, Recorder
from ._usercode import default_user_code, generated

__all__ = [
    "GeneratorDriver",
    "StepTracer",
    "is_user_code",
    "suspended_frames",
    "user_position",
    "without_comment",
]

T = TypeVar("T")

#: Whose code is it: the thread driver's predicate (not the standard library,
#: installed packages or critsec itself, except its lab), cached per file
#: because the tracer asks at every call.
_user_file = functools.lru_cache(maxsize=4096)(default_user_code)


def is_user_code(code: types.CodeType) -> bool:
    """Whether ``code`` is the user's (see ``_usercode.default_user_code``)."""
    return _user_file(code.co_filename) and not generated(code)


def user_frame(frames: Sequence[types.FrameType]) -> types.FrameType:
    """The innermost user frame among ``frames`` (outermost first, not
    empty); the innermost frame if none is the user's."""
    return next((f for f in reversed(frames) if is_user_code(f.f_code)), frames[-1])


def user_position(frames: Sequence[types.FrameType]) -> tuple[str, str]:
    """``("file.py:12", source line)`` of :func:`user_frame`; ``("", "")``
    for no frames."""
    if not frames:
        return "", ""
    frame = user_frame(frames)
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    return f"{filename}:{lineno}", linecache.getline(filename, lineno).strip()


def went_round(
    rounds: Rounds,
    task: int,
    frames: Sequence[types.FrameType],
    events: Sequence[Event],
    at: tuple[str, str],
) -> RunOutcome | None:
    """A task suspended at ``frames`` by a bare ``yield`` or an ``await``
    that is no wait, after ``events``: the end of a round of a spin-wait,
    maybe (._fairness), where its own innermost frame stopped. The
    livelock outcome once there is one."""
    frame = user_frame(frames)
    seen = [(e.kind, e.text) for e in events]
    place = (frame.f_code, frame.f_lasti)
    return rounds.went_round(task, place, frame.f_locals.values(), seen, lambda: at)


def suspended_frames(awaitable: Any) -> list[types.FrameType]:
    """The frames of a suspended generator or coroutine and of what it
    delegates to (``yield from``, ``await``), outermost first; empty once
    it finished."""
    frames = []
    inner = awaitable
    while inner is not None:
        frame = _first(inner, ("gi_frame", "cr_frame", "ag_frame"))
        if frame is None:
            break
        frames.append(frame)
        inner = _first(inner, ("gi_yieldfrom", "cr_await", "ag_await"))
    return frames


def _first(obj: Any, attributes: tuple[str, ...]) -> Any:
    """The first of ``obj``'s ``attributes`` that it has and is not None."""
    for attribute in attributes:
        value = getattr(obj, attribute, None)
        if value is not None:
            return value
    return None


#: What each instruction of a code object reads or writes, worked out once.
_accesses = functools.lru_cache(maxsize=1024)(analyse)


class StepTracer:
    """Records what the user's code does while one task runs: the source
    lines it starts and the shared values it reads and writes.

    A ``sys.settrace`` function that follows only the user's own frames
    (:func:`is_user_code`), so critsec's primitives, the standard library
    and installed packages run at full speed. Shared accesses are loads and
    stores of globals, closure variables, attributes and subscripts
    (:func:`~._access.analyse`), with data values (:func:`~._access.is_data`);
    a line with such an access is shown as the access (the source is beside
    it in the trace). A read shows the value about to be read, a write the
    value once written. Locals and calls into libraries are not tracked.
    Consecutive repeats of a line (a generator resumed where it yielded)
    are recorded once.

    One tracer serves one schedule, on one thread: the drivers install it
    for the schedule, call ``run`` around each step of a task, then ``take``.
    """

    def __init__(self) -> None:
        self.task: int | None = None  # whose step runs now
        self.events: list[Event] = []
        self.accesses = Accesses(self._emit, is_user_code)
        # Distinct objects of one type get distinct names: State, State#2;
        # an object read from a named place is named after it (State.lock).
        self.names = self.accesses.names

    def _global(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        if is_user_code(frame.f_code):
            # f_trace first: on 3.12+ setting f_trace_opcodes instruments the
            # code only if the frame already has its local tracer.
            frame.f_trace = self._local
            frame.f_trace_opcodes = True
            return self._local
        on_return = self.accesses.property_call(frame)
        if on_return is None:
            return None

        def returned(value: Any) -> None:
            if self.task is not None:  # (not an asyncio callback outside a step)
                on_return(value)

        frame.f_trace_lines = False
        return return_tracer(returned)

    def _local(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if self.task is None:  # user code outside a step (an asyncio callback)
            return self._local
        self.accesses.settle(frame, failed=event == "exception")
        if event == "line":
            filename, lineno = frame.f_code.co_filename, frame.f_lineno
            where = f"{filename}:{lineno}"
            if not (self.events and self.events[-1].where == where):
                source = linecache.getline(filename, lineno).strip()
                self.events.append(Event(self.task, "line", source, where, source))
        elif event == "opcode":
            access = _accesses(frame.f_code).get(frame.f_lasti)
            if access is not None and access.what != "with":
                self.accesses.before(self.task, frame, access)
        return self._local

    def name_of(self, owner: Any) -> str:
        """A name for ``owner``, the same for the whole schedule and on every
        run (never an address): the place it was first read from
        (``State.lock``), else its type and order of first sight
        (``Counter``, ``Counter#2``)."""
        return self.names.of(owner)

    def _emit(
        self, task: int, kind: str, text: str, filename: str, line: int, location: str, shown: str
    ) -> None:
        """Record an access at ``line`` (a write is recorded once done, by
        when the frame may be on its next line): it stands for that line."""
        where = f"{filename}:{line}"
        if self.events and self.events[-1].kind == "line" and self.events[-1].where == where:
            self.events.pop()
        source = linecache.getline(filename, line).strip()
        self.events.append(Event(task, kind, text, where, source, location, shown))

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Trace this thread while the block runs (one schedule). Installed
        once rather than around each step: on 3.12+ every ``sys.settrace``
        call re-instruments the code, which costs more than the tracing."""
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            yield
        finally:
            sys.settrace(previous)

    def run(self, task: int, action: Callable[[], T]) -> T:
        """``action()`` (a step of task ``task``), what the user's code does
        meanwhile recorded as that task's events. Outside ``run`` nothing is
        recorded."""
        self.task = task
        try:
            return action()
        finally:
            self.accesses.settle()  # a store by the last instruction of the step
            self.task = None

    def take(self, where: str) -> list[Event]:
        """The events recorded since the last ``take``, less a final line
        event at ``where``: the line a task stopped at is shown once, as the
        yield (await, block) itself."""
        events = self.events
        if events and events[-1].kind == "line" and events[-1].where == where:
            events = events[:-1]
        self.events = []
        return events


class GeneratorDriver(Driver):
    """Runs one schedule of generator tasks (see the module docstring).

    Called by the explorer only, on one thread; ``run`` blocks until the
    schedule ends and guarantees that every task's generator is closed
    (its ``finally`` blocks run) and the real clock is restored, however
    it ends -- also when ``branch`` raises ``ExplorationLimit``.
    """

    kind = "generator"

    def run(
        self,
        setup: Callable[[], Any],
        tasks: Sequence[Callable[[Any], Any]],
        invariant: Callable[[Any], bool],
        scheduler: Scheduler,
        recorder: Recorder,
    ) -> RunOutcome:
        clock = VirtualClock()
        with clock.installed():
            state = setup()
            names = task_names(tasks)
            made = start_tasks(
                [Task(fn, (state,), name=name) for fn, name in zip(tasks, names, strict=True)],
                "generator",
            )
            live = [_Running(i, names[i], g) for i, g in enumerate(made)]
            tracer = StepTracer()
            forgotten.watching += 1
            try:
                with tracer.installed():
                    outcome = self._schedule(live, scheduler, recorder, clock, tracer)
            finally:
                problems = _close(live)
                forgotten.watching -= 1
                forgotten.dropped.clear()
            if outcome.kind is not None:
                if problems:
                    detail = "\n".join([outcome.detail.rstrip(), *problems])
                    outcome = RunOutcome(outcome.kind, outcome.message, detail, outcome.task)
                return outcome
            return self.check_invariant(invariant, state)  # on the schedule's clock too

    def _schedule(
        self,
        live: list[_Running],
        scheduler: Scheduler,
        recorder: Recorder,
        clock: VirtualClock,
        tracer: StepTracer,
    ) -> RunOutcome:
        """Run tasks one resumption at a time until all finished (``live``
        empty), one raised, or none can run."""
        current: int | None = None
        names = {r.index: r.name for r in live}
        rounds = Rounds(scheduler, names.__getitem__)
        while live:
            # Runnable: ready now, or parked with a deadline (its timeout is a choice).
            candidates = {
                r.index: r
                for r in live
                if r.ready(clock.time) or (r.park is not None and r.park.deadline is not None)
            }
            if not candidates:
                return _deadlock(live, tracer)
            choice = scheduler.branch(sorted(candidates), current)
            current = choice
            running = candidates[choice]
            park = running.park
            if park is not None:
                where, source = user_position(suspended_frames(running.generator))
                if park.woken:
                    text = f"woken: {park.condition}"
                else:
                    assert park.deadline is not None  # else it was not a candidate
                    clock.advance_to(park.deadline)
                    text = f"times out waiting for {park.condition}"
                recorder.record(Event(choice, "wake", text, where, source))
                running.park = None
            try:
                request = tracer.run(choice, functools.partial(running.generator.send, None))
                if (misuse := forgotten.take()) is not None:
                    raise TypeError(misuse)
            except StopIteration as stop:
                if (misuse := forgotten.take()) is not None:
                    return self._failed(running, TypeError(misuse), recorder, tracer, live)
                _flush(recorder, tracer.take(""))
                recorder.record(Event(choice, "return", f"returns {short(stop.value)}"))
                live.remove(running)
                rounds.progressed(choice)
                continue
            except (Exception, SystemExit) as exc:  # sys.exit() too: see _exits
                return self._failed(running, exc, recorder, tracer, live)
            frames = suspended_frames(running.generator)
            where, source = user_position(frames)
            events = tracer.take(where)
            livelock = None
            if request is None:
                event = Event(choice, "yield", without_comment(source) or "yield", where, source)
                livelock = went_round(rounds, choice, frames, events, (where, source))
            elif isinstance(request, Park):
                running.park = request
                limit = "" if request.deadline is None else " (with a timeout)"
                owner = tracer.name_of(request.owner)
                text = f"waits for {request.condition} on {owner}{limit}"
                event = Event(choice, "block", text, where, source, location=owner)
                rounds.progressed(choice)
            else:
                raise TypeError(bad_yield(running.name, request, f" at {where}"))
            _flush(recorder, events)
            recorder.record(event)
            if livelock is not None:
                return livelock
        return RunOutcome()

    @staticmethod
    def _failed(
        running: _Running,
        exc: BaseException,
        recorder: Recorder,
        tracer: StepTracer,
        live: list[_Running],
    ) -> RunOutcome:
        """The outcome of a task that raised ``exc`` (or misused a primitive)."""
        _flush(recorder, tracer.take(""))
        line, detail = describe_exception(exc)
        recorder.record(Event(running.index, "raise", f"raises {line}", detail=detail))
        live.remove(running)
        return RunOutcome(
            "exception", f"task {running.name!r} raised {line}", detail, running.index
        )


def without_comment(source: str) -> str:
    """A source line for a trace cell: without a trailing ``  # comment``."""
    return source.split("  #", 1)[0].rstrip()


def _flush(recorder: Recorder, events: list[Event]) -> None:
    for event in events:
        recorder.record(event)


def _deadlock(live: list[_Running], tracer: StepTracer) -> RunOutcome:
    """Every unfinished task waits without a deadline: who waits on what, where."""
    waits = []
    for running in live:
        park = running.park
        assert park is not None  # a task without a park is ready
        owner = f"{tracer.name_of(park.owner)} ({describe_object(park.owner)})"
        where = user_position(suspended_frames(running.generator))
        waits.append(Wait(running.name, f"{park.condition} on {owner}", *where))
    return RunOutcome("deadlock", *deadlock_report(waits))


def _close(live: list[_Running]) -> list[str]:
    """Close the unfinished tasks: ``GeneratorExit`` at their yield runs their
    ``finally`` and ``with`` exits (held locks get released). Returns what
    went wrong while closing, for the report."""
    problems = []
    for running in live:
        try:
            running.generator.close()
        except Exception as exc:
            problems.append(f"closing task {running.name!r} raised {exc!r}")
    return problems
