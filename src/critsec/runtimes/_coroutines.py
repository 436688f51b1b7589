"""The coroutines runtime: generator tasks that switch only at ``yield``.

This is the lesson's third execution model, made to work. A task is a
*generator function*; the runtime's scheduler runs one task at a time, on
the thread that called ``run()``, and a task runs until it yields:

* A bare ``yield`` is a switch point: the scheduler may now run another task.
* Waiting is a yield too, because a generator can only suspend at a
  ``yield``. So every method that may wait is itself a generator, used with
  ``yield from`` (the idiom asyncio used before ``async``/``await``)::

      ok = yield from lock.acquire()          # blocking=True, timeout=-1
      with (yield from lock):                 # waits for the lock; released on exit
          ...
      yield from q.put(item)                  # block=True, timeout=None
      item = yield from q.get()
      yield from q.join()

  Methods that never wait are plain calls: ``lock.release()``,
  ``lock.locked()``, ``q.put_nowait()``, ``q.get_nowait()``,
  ``q.task_done()``, ``q.shutdown()``, ``q.qsize()``, ``q.empty()``,
  ``q.full()``. A plain ``with lock:`` works when the lock is free; when it
  is held it raises ``RuntimeError`` (it cannot wait: write
  ``with (yield from lock):``). Forgetting ``yield from`` (``lock.acquire()``
  alone) would wait for nothing and acquire nothing; it is caught instead
  (:class:`Wait`): the task fails with a ``TypeError`` naming the line, at
  its next switch point or end.

Nothing else runs between two yields of a task, so code without a ``yield``
inside is a critical section by construction: a task that yields only
outside its critical section needs no lock. A task that yields *between*
reading and writing shared state loses updates -- deterministically, the
same way on every run.

Scheduling. ``order="round-robin"`` (the default) resumes the runnable
tasks in turn, in the order given to ``run()``. ``order="random"`` picks a
runnable task at every switch with ``random.Random(seed)``, seeded afresh
for every ``run()``: the same seed gives the same interleaving.

Waiting. The lock and queue algorithms are :class:`~._core.LockCore` and
:class:`~._core.QueueCore`, shared with every runtime. An operation yields a
wait request ``(condition, seconds_left)``; the driver here (:meth:`Parking._wait`)
turns it into a :class:`Park`, puts it on the primitive's waiter list for
that condition and yields it up to the scheduler, which does not resume the
task until a notify wakes the park or its deadline passes (then the
algorithm sees the time ran out). Deadlines use the real monotonic clock:
when no task can run but some wait with a deadline, the scheduler sleeps
until the earliest one. When none has a deadline, nothing can ever wake
them: ``run()`` raises :class:`~critsec.DeadlockError` saying who waits for
what.

Timeouts. ``run(timeout=...)`` is checked at every switch point, and a
task that never reaches one (``while True: pass``) is interrupted by a
watchdog thread that raises an exception inside it at the deadline
(:mod:`critsec._watchdog`); either way ``run()`` raises ``TimeoutError``
naming the unfinished tasks, after closing them. A task blocked inside one
C call (``time.sleep``, a socket read) is interrupted when that call
returns.

Limits. Primitives serve the
tasks of one ``run()`` at a time, on one thread; they are not thread-safe.
They may be created before ``run()`` and reused by later runs.

The waiter lists, the queue's non-waiting half, the counter and the task
checks are shared with the asyncio runtime (:mod:`._cooperative`), whose
driver awaits a future where this one yields a park.
"""

from __future__ import annotations

import linecache
import os
import random
import sys
import threading
import time
import types
import warnings
from collections.abc import Generator, Iterator
from typing import Any, Generic, TypeVar

from .._errors import DeadlockError, Wait
from .._outcome import Outcome, collect, overdue
from .._protocols import GeneratorLock, GeneratorQueue
from .._runtime import Runtime
from .._task import Task
from .._watchdog import Overtime, Watchdog
from ._ccoroutines import RAISED, RETURNED, TAKE, YIELDED, Held, LockBase, ParkBase, RunningBase
from ._ccoroutines import round_robin as _round_robin
from ._cooperative import Cooperative, CooperativeCounter, CooperativeQueue, start_tasks
from ._core import UNLOCKED, LockCore, Steps, clock, run_nowait

__all__ = [
    "CoroutineLock",
    "CoroutineQueue",
    "CoroutinesRuntime",
    "Park",
    "Waiting",
    "forgotten",
]

T = TypeVar("T")

#: Valid values of ``critsec.runtime("coroutines", order=...)``.
ORDERS = ("round-robin", "random")


# -- the coroutines runtime ---------------------------------------------------


class Park(ParkBase):
    """What a waiting task yields to the scheduler: "resume me once
    ``condition`` is notified on ``owner``, or at ``deadline``".

    Made by the primitives' waiting methods and passed up through
    ``yield from``; a task never makes one itself. Its fields are C
    (ParkBase): the scheduler's C loop reads them at every switch.
    """

    __slots__ = ()
    owner: Parking
    condition: str
    deadline: float | None
    woken: bool

    def __init__(self, owner: Parking, condition: str, seconds: float | None) -> None:
        self.owner = owner
        self.condition = condition
        self.deadline = None if seconds is None else clock.now() + seconds
        self.woken = False

    def __repr__(self) -> str:
        return f"<Park for {self.condition} on {self.owner!r}>"


class _Forgotten(threading.local):
    """Waits dropped without ``yield from`` on this thread, for the scheduler
    running here (``watching`` counts them) to fail their task with."""

    def __init__(self) -> None:
        self.watching = 0
        self.dropped: list[str] = []

    def take(self) -> str | None:
        """The first forgotten wait since the last call, as an error message."""
        if not self.dropped:
            return None
        message = self.dropped[0]
        self.dropped.clear()
        return message


forgotten = _Forgotten()


class Waiting(Generic[T]):
    """What a method that may wait returns: use it with ``yield from``.

    ``yield from`` starts it (``__iter__`` hands over the generator that
    does the waiting). Dropped without being started -- ``lock.acquire()``
    on a line of its own -- it would silently do nothing, so it reports
    itself: to the scheduler running the task, which fails the task with
    a ``TypeError`` at its next switch point or end; outside any run, as a
    ``RuntimeWarning`` (like a coroutine never awaited). CPython drops it
    at once, so the line named is the one that forgot ``yield from``.
    """

    __slots__ = ("_call", "_started", "_steps")

    def __init__(self, steps: Generator[Park, None, T], call: str) -> None:
        self._steps = steps
        self._call = call
        self._started = False

    def __iter__(self) -> Generator[Park, None, T]:
        self._started = True
        return self._steps

    def __del__(self) -> None:
        if self._started:
            return
        self._steps.close()
        frame = sys._getframe(1)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        message = (
            f"{self._call} was called without `yield from` at {where}: it waited for "
            f"nothing and did nothing (write `yield from {self._call}`)"
        )
        if forgotten.watching:
            forgotten.dropped.append(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"<{self._call}: use with `yield from`>"


class Parking(Cooperative[Park]):
    """The coroutines runtime's driver: runs an algorithm from ``_core``,
    turning each wait request into a yielded :class:`Park`."""

    def _wake(self, waiter: Park) -> bool:
        waiter.woken = True
        return True

    def _rewait(self, park: Park) -> bool:
        """Called by the scheduler before it resumes a task whose ``park``
        was woken: if the task would find its condition gone again (a lock
        taken meanwhile by a task that did not wait) and only park anew,
        park it again here, as its algorithm would, and return True."""
        return False

    def _wait(self, steps: Steps[T]) -> Generator[Park, None, T]:
        try:
            condition, seconds = next(steps)
            while True:
                park = Park(self, condition, seconds)
                waiters = self._waiters[condition]
                waiters.append(park)
                try:
                    yield park
                finally:
                    # Resumed by its deadline, or closed while waiting: it is
                    # still on the list, and must not absorb a later notify.
                    if park.woken:
                        self._woken[condition] -= 1
                    else:
                        waiters.remove(park)
                condition, seconds = steps.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            steps.close()


class CoroutineLock(Parking, LockBase, LockCore):
    """A mutual-exclusion lock for generator tasks, like ``threading.Lock``.

    Take it with ``ok = yield from lock.acquire(blocking=True, timeout=-1)``
    or ``with (yield from lock): ...``; waiting suspends only the calling
    task. ``release()`` and ``locked()`` never wait; any task may release
    (as with ``threading.Lock``), and releasing an unlocked lock raises
    ``RuntimeError``. A plain ``with lock:`` takes a free lock and raises
    ``RuntimeError`` if it is held, since it cannot wait. Not FIFO-fair.
    """

    # The state, release() and the no-wait acquire are C (LockBase, see
    # _ccoroutines.c: the lesson's locked loop runs them at every increment);
    # waiting is LockCore's algorithm, driven here.

    def __init__(self) -> None:
        self._init_waiters(UNLOCKED)
        self._bind(UNLOCKED, self._waiters[UNLOCKED], self._woken)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> Waiting[bool]:
        """Use as ``ok = yield from lock.acquire(...)``: take the lock,
        waiting (at most ``timeout`` seconds, unless -1) while it is held.
        Returns False if ``blocking`` is false or the time ran out."""
        return Waiting(self._wait(self._acquire_steps(blocking, timeout)), "lock.acquire()")

    # LockBase's, in C (Parking's, "never", comes first in the MRO). The
    # stub types a C method read off its class as taking no self.
    _rewait = LockBase._rewait  # type: ignore[assignment]

    def _acquire_waiting(self) -> Generator[Park, None, Held]:
        # `with (yield from lock):` when the lock cannot be taken at once
        # (LockBase.__iter__ takes a free one): wait for it, then hand
        # `with` the context manager whose exit releases it.
        yield from self._wait(self._acquire_steps(True, -1))
        return self._held

    def __enter__(self) -> None:
        if not run_nowait(self._acquire_steps(False, -1)):
            raise RuntimeError(
                "the lock is held and `with lock:` cannot wait: in a coroutines task write "
                "`with (yield from lock):`"
            )

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<CoroutineLock {'locked' if self._locked else 'unlocked'}>"


class CoroutineQueue(Parking, CooperativeQueue[Park, T]):
    """A FIFO queue for generator tasks: ``queue.Queue`` with Python 3.13's
    ``shutdown()``, where the waiting methods are used with ``yield from``.

    ``yield from q.put(item, block=True, timeout=None)``,
    ``item = yield from q.get(block=True, timeout=None)`` and
    ``yield from q.join()`` suspend only the calling task; the other
    methods never wait.
    """

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> Waiting[None]:
        """Use as ``yield from q.put(item)``: put ``item``, waiting (at most
        ``timeout`` seconds) for room. Raises :class:`~critsec.Full` if
        ``block`` is false or the time ran out, :class:`~critsec.ShutDown`
        if the queue is or gets shut down."""
        return Waiting(self._wait(self._put_steps(item, block, timeout)), "q.put(item)")

    def get(self, block: bool = True, timeout: float | None = None) -> Waiting[T]:
        """Use as ``item = yield from q.get()``: remove and return the oldest
        item, waiting (at most ``timeout`` seconds) for one. Raises
        :class:`~critsec.Empty` if ``block`` is false or the time ran out,
        :class:`~critsec.ShutDown` once shut down and drained."""
        return Waiting(self._wait(self._get_steps(block, timeout)), "q.get()")

    def join(self) -> Waiting[None]:
        """Use as ``yield from q.join()``: wait until every item put has been
        marked done by ``task_done``."""
        return Waiting(self._wait(self._join_steps()), "q.join()")


class _Running(RunningBase):
    """A task being run: its generator, and the park it waits on, if any.
    ``_Running(index, name, generator, park=None)``; its fields are C
    (RunningBase): the scheduler's C loop reads them at every switch."""

    __slots__ = ()
    index: int
    name: str
    generator: Generator[Any, None, Any]
    park: Park | None

    def ready(self, now: float) -> bool:
        park = self.park
        return park is None or park.woken or (park.deadline is not None and park.deadline <= now)

    def __repr__(self) -> str:
        return f"<_Running {self.index} {self.name!r} park={self.park!r}>"


def _first_ready(live: list[_Running], start: int, now: float) -> int | None:
    """Round-robin: the index of the first ready task from ``start`` on,
    wrapping around, or None if every task waits."""
    count = len(live)
    for k in range(start, start + count):
        if live[k % count].ready(now):
            return k % count
    return None


def _taken_back(running: _Running) -> bool:
    """Whether the task chosen to run was woken only to find its condition
    gone again (a lock taken meanwhile by a task that did not wait): then it
    would just park again, so its park is put back instead and its turn is
    over without resuming it -- the same schedule, one resumption less."""
    park = running.park
    return park is not None and park.woken and park.owner._rewait(park)


def _innermost_frame(generator: Generator[Any, None, Any]) -> types.FrameType | None:
    """The frame of the innermost ``yield`` a generator is stopped at."""
    inner: Any = generator
    while isinstance(inner.gi_yieldfrom, types.GeneratorType):
        inner = inner.gi_yieldfrom
    frame: types.FrameType | None = inner.gi_frame
    return frame


def _where(generator: Generator[Any, None, Any]) -> str:
    """`` at file:line`` of the innermost ``yield`` a generator is stopped at."""
    frame = _innermost_frame(generator)
    return "" if frame is None else f" at {frame.f_code.co_filename}:{frame.f_lineno}"


def _position(running: _Running) -> tuple[str, str]:
    """(``file:line``, source) of the task's own code where it waits: the
    innermost frame of the task's that is not this package's."""
    frames = []
    inner: Any = running.generator
    while inner is not None and inner.gi_frame is not None:
        frames.append(inner.gi_frame)
        inner = inner.gi_yieldfrom if isinstance(inner.gi_yieldfrom, types.GeneratorType) else None
    mine = [f for f in frames if not f.f_code.co_filename.startswith(_RUNTIMES_DIR)]
    if not mine:
        return "", ""
    frame = mine[-1]
    filename, line = frame.f_code.co_filename, frame.f_lineno
    return f"{filename}:{line}", linecache.getline(filename, line).strip()


_RUNTIMES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")


def bad_yield(task: str, request: Any, where: str) -> str:
    """The error for a task that yielded something other than a switch point
    (a bare ``yield``) or a wait (``yield from`` a primitive's method)."""
    hint = ""
    if isinstance(request, Waiting):
        request.__iter__().close()  # counts as used: it is reported here, not when dropped
        hint = " (did you mean `yield from`?)"
    elif isinstance(request, Iterator):
        hint = " (did you mean `yield from`?)"
    return (
        f"task {task!r} yielded {request!r}{where}{hint}: a task may only `yield` (a switch "
        "point) or wait with `yield from` on a lock or queue method"
    )


class CoroutinesRuntime(Runtime[GeneratorLock, GeneratorQueue[Any]]):
    """Tasks are generator functions run by a scheduler on the calling
    thread; they switch only at ``yield`` (see the module docstring).

    ``order``: ``"round-robin"`` (default) or ``"random"``; ``seed`` seeds
    the random order afresh for every ``run()`` (same seed, same
    interleaving). ``run()`` blocks the calling thread until every task
    finished; it raises :class:`~critsec.DeadlockError` when every
    unfinished task waits and nothing can wake them.
    """

    name = "coroutines"
    style = "generator"

    def __init__(self, order: str = "round-robin", seed: int | str | bytes | None = None) -> None:
        if not isinstance(order, str):
            raise TypeError(f"order must be a str, got {type(order).__name__}")
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; valid orders: {', '.join(ORDERS)}")
        random.Random(seed)  # refuses a seed of an unsupported type (TypeError)
        self.order = order
        self.seed = seed

    def lock(self) -> CoroutineLock:
        return CoroutineLock()

    def counter(self, initial: int = 0) -> CooperativeCounter:
        return CooperativeCounter(initial)

    def queue(self, maxsize: float = 0) -> CoroutineQueue[Any]:
        return CoroutineQueue(maxsize)

    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]:
        generators = start_tasks(tasks, "generator")
        live = [
            _Running(i, t.name, g) for i, (t, g) in enumerate(zip(tasks, generators, strict=True))
        ]
        outcomes = [Outcome() for _ in tasks]
        forgotten.watching += 1
        try:
            try:
                # The scheduler checks the time at switch points; the
                # watchdog interrupts a task that never reaches one.
                with Watchdog(timeout, spared=[_RUNTIMES_DIR], library=True):
                    self._schedule(live, outcomes, timeout)
            except Overtime:
                raise overdue(timeout, [running.name for running in live]) from None
            return collect([t.name for t in tasks], outcomes)
        except BaseException as exc:
            # Stop the unfinished tasks: GeneratorExit at their yield runs
            # their `finally` and `with` exits (a held lock gets released).
            for running in live:
                try:
                    running.generator.close()
                except Exception as problem:  # reported on exc, not lost
                    exc.add_note(f"closing task {running.name!r} raised {problem!r}")
            raise
        finally:
            forgotten.watching -= 1
            forgotten.dropped.clear()

    def _schedule(
        self, live: list[_Running], outcomes: list[Outcome], timeout: float | None
    ) -> None:
        """Run tasks until all finished (``live`` empty) or one failed (it
        is removed from ``live``, its outcome recorded)."""
        rng = random.Random(self.seed) if self.order == "random" else None
        monotonic = time.monotonic
        deadline = None if timeout is None else monotonic() + timeout
        dropped = forgotten.dropped  # this thread's list: take() empties it in place
        turn = 0  # round-robin: where in `live` to look for the next task
        count = len(live)  # kept equal to len(live)
        # Round-robin without a run timeout takes its common steps in C
        # (_ccoroutines.round_robin); the code below is the reference, and
        # takes every other step.
        fast = rng is None and deadline is None and _round_robin is not None
        while live:
            # The clock is read only when something depends on it: a run
            # timeout, or a task that waits (its park may have a deadline).
            if deadline is not None and monotonic() >= deadline:
                raise overdue(timeout, [running.name for running in live])
            event = TAKE
            if fast:
                turn, event, payload = _round_robin(live, turn, dropped)
            if event == TAKE:
                if rng is None:
                    if turn >= count:
                        turn = 0
                    running = live[turn]
                    park = running.park
                    if park is not None:  # else its turn: the common case, kept short
                        if not park.woken:  # (a woken one is ready, whatever the time)
                            now = monotonic()
                            chosen = _first_ready(live, turn, now)
                            if chosen is None:
                                self._idle(live, now, deadline)
                                continue
                            turn, running = chosen, live[chosen]
                        if _taken_back(running):
                            turn += 1
                            continue
                else:
                    now = monotonic()
                    ready = [k for k, running in enumerate(live) if running.ready(now)]
                    if not ready:
                        self._idle(live, now, deadline)
                        continue
                    turn = rng.choice(ready)
                    running = live[turn]
                    if _taken_back(running):
                        continue
                try:
                    event, payload = YIELDED, running.generator.send(None)
                except StopIteration as stop:
                    event, payload = RETURNED, stop.value
                except Exception as exc:  # becomes the run's TaskError
                    # Without this frame, as from the C loop: the task's own.
                    tb = exc.__traceback__
                    event, payload = RAISED, exc.with_traceback(tb.tb_next if tb else None)
            running = live[turn]
            if event == RETURNED:
                outcomes[running.index].value = payload
                del live[turn]  # the next task moves into this slot: `turn` stays
                count -= 1
                if (misuse := forgotten.take()) is not None:
                    outcomes[running.index] = Outcome.failure(TypeError(misuse))
                    return
                continue
            if event == RAISED:
                outcomes[running.index] = Outcome.failure(payload)
                del live[turn]
                return
            if dropped and (misuse := forgotten.take()) is not None:
                outcomes[running.index] = Outcome.failure(TypeError(misuse))
                del live[turn]
                return
            if payload is not None and not isinstance(payload, Park):
                raise TypeError(bad_yield(running.name, payload, _where(running.generator)))
            running.park = payload
            turn += 1

    @staticmethod
    def _idle(live: list[_Running], now: float, deadline: float | None) -> None:
        """No task can run: sleep until the earliest deadline, or raise
        DeadlockError if no waiting task has one."""
        parks = [running.park for running in live if running.park is not None]
        deadlines = [park.deadline for park in parks if park.deadline is not None]
        if not deadlines:
            raise DeadlockError(
                [
                    Wait(running.name, f"{park.condition} on {park.owner!r}", *_position(running))
                    for running in live
                    if (park := running.park) is not None
                ]
            )
        wake_at = min(deadlines) if deadline is None else min(min(deadlines), deadline)
        # The runtime honestly waiting for a timeout, not a guess.
        time.sleep(max(0.0, wake_at - now))

    def __repr__(self) -> str:
        seed = "" if self.seed is None else f", seed={self.seed!r}"
        return f"critsec.runtime({self.name!r}, order={self.order!r}{seed})"
