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
  alone) makes a generator object and acquires nothing.

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

Limits. A task that never yields cannot be interrupted, so
``run(timeout=...)`` is checked at switch points only. Primitives serve the
tasks of one ``run()`` at a time, on one thread; they are not thread-safe.
They may be created before ``run()`` and reused by later runs.

The waiter lists (:class:`Cooperative`), the queue's non-waiting half
(:class:`CooperativeQueue`), the counter and the task checks
(:func:`start_tasks`) are shared with the asyncio runtime, whose driver
awaits a future where this one yields a park.
"""

from __future__ import annotations

import collections
import functools
import inspect
import random
import time
import types
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._errors import DeadlockError
from .._outcome import Outcome, collect
from .._runtime import Runtime
from .._task import Task
from ._core import (
    DequeStorage,
    LockCore,
    PlainCounter,
    QueueCore,
    Steps,
    check_maxsize,
    clock,
    run_nowait,
)

__all__ = [
    "Cooperative",
    "CooperativeCounter",
    "CooperativeQueue",
    "CoroutineLock",
    "CoroutineQueue",
    "CoroutinesRuntime",
    "Park",
    "start_tasks",
]

T = TypeVar("T")
W = TypeVar("W")

#: Valid values of ``critsec.runtime("coroutines", order=...)``.
ORDERS = ("round-robin", "random")


# -- shared with the asyncio runtime ------------------------------------------


class Cooperative(Generic[W]):
    """Waiter lists for a primitive of a cooperative runtime (one task runs
    at a time): for each condition, the waiters in arrival order.

    ``_notify`` (called by the algorithms in ``_core``) wakes the first
    waiter that accepts, or all of them. ``_wake`` says how to wake one
    waiter of this runtime and whether it accepted: a park always does; an
    asyncio future that was cancelled does not, and the next one is tried.
    """

    _waiters: collections.defaultdict[str, collections.deque[W]]
    #: Waiters woken that have not run yet, per condition: a fair lock
    #: counts them as still queued (see ``LockCore._fair``).
    _woken: collections.Counter[str]

    def _init_waiters(self) -> None:
        self._waiters = collections.defaultdict(collections.deque)
        self._woken = collections.Counter()

    def _wake(self, waiter: W) -> bool:
        raise NotImplementedError

    def _notify(self, condition: str, all: bool = False) -> None:
        waiters = self._waiters[condition]
        while waiters:
            if self._wake(waiters.popleft()):
                self._woken[condition] += 1
                if not all:
                    return

    def _queued(self, condition: str) -> bool:
        return bool(self._waiters[condition]) or self._woken[condition] > 0


class CooperativeCounter(PlainCounter):
    """An integer shared by the tasks of a cooperative runtime (coroutines,
    asyncio).

    ``value`` reads or writes it; ``add(delta)`` adds and returns the new
    value. Tasks switch only where they yield (or await), so ``add`` and
    ``counter.value += 1`` are both atomic *unless* the task yields between
    a read and its write -- which is how lost updates are shown here. Never
    blocks; any task of the run may call it.
    """


class CooperativeQueue(Cooperative[W], DequeStorage, QueueCore[Any]):
    """The methods of a cooperative runtime's queue that never wait.

    The queue is ``queue.Queue`` with Python 3.13's ``shutdown()`` (the
    algorithm is :class:`~._core.QueueCore`); subclasses add the waiting
    ``put``/``get``/``join`` in their runtime's style. Any task of the run
    may call these methods; none of them waits or switches.
    """

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = check_maxsize(maxsize)
        self._init_storage()
        self._init_waiters()

    def put_nowait(self, item: Any) -> None:
        """Put ``item`` at once, or raise :class:`~critsec.Full` if the queue
        is full (:class:`~critsec.ShutDown` if it was shut down)."""
        run_nowait(self._put_steps(item, False, None))

    def get_nowait(self) -> Any:
        """Remove and return the oldest item at once, or raise
        :class:`~critsec.Empty` (:class:`~critsec.ShutDown` once shut down
        and drained)."""
        return run_nowait(self._get_steps(False, None))

    def task_done(self) -> None:
        """Mark one item taken by ``get`` as fully processed; wakes ``join``
        waiters when none is left. ``ValueError`` if called too often."""
        self._task_done()

    def shutdown(self, immediate: bool = False) -> None:
        """Stop the queue: later puts raise :class:`~critsec.ShutDown` and
        waiting putters wake and raise it; getters drain what is left, then
        raise it. ``immediate=True`` discards what is left (counting it as
        done for ``join``), so getters raise at once."""
        self._shutdown(immediate)

    def qsize(self) -> int:
        """Items in the queue (exact: no other task runs meanwhile)."""
        return self._qsize()

    def empty(self) -> bool:
        """``qsize() == 0``."""
        return not self._qsize()

    def full(self) -> bool:
        """``0 < maxsize <= qsize()``."""
        return self._is_full()

    @property
    def is_shutdown(self) -> bool:
        """True once ``shutdown()`` was called."""
        return self._is_shutdown

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done by ``task_done``."""
        return self._unfinished

    def __repr__(self) -> str:
        state = " shut down" if self._is_shutdown else ""
        return f"<{type(self).__name__} maxsize={self.maxsize} qsize={self._qsize()}{state}>"


@dataclass(frozen=True)
class TaskKind:
    """What the task functions of a cooperative runtime must be."""

    runtime: str
    is_function: Callable[[Any], bool]
    is_instance: Callable[[Any], bool]
    noun: str
    advice: str


TASK_KINDS = {
    "coroutines": TaskKind(
        "coroutines",
        inspect.isgeneratorfunction,
        inspect.isgenerator,
        "a generator function",
        "the coroutines runtime switches tasks only at `yield`: add a `yield` where the "
        "task may switch (e.g. between reading and writing shared state)",
    ),
    "asyncio": TaskKind(
        "asyncio",
        inspect.iscoroutinefunction,
        inspect.iscoroutine,
        "an async function",
        "the asyncio runtime runs coroutines: write it as `async def` and `await` where "
        "the task may switch",
    ),
}


def _innermost(fn: Any) -> Any:
    """The function under partials, bound methods and ``functools.wraps`` decorators."""
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif inspect.ismethod(fn):
            fn = fn.__func__
        elif hasattr(fn, "__wrapped__"):
            fn = inspect.unwrap(fn)
        else:
            return fn


def _refusal(fn: Any, kind: TaskKind) -> str | None:
    """Why ``fn`` cannot be one of ``kind``'s tasks, decided without calling it."""
    if kind.is_function(fn):
        return None
    for other in TASK_KINDS.values():
        if other is not kind and other.is_function(fn):
            return f"is {other.noun}: run it with critsec.runtime({other.runtime!r})"
    inner = _innermost(fn)
    # A `def` without `yield` (or without `async`) would run to its end, or loop
    # forever, without a single switch point: refuse it before it runs. A lambda
    # cannot loop, so it is called to see whether it returns a generator.
    if inspect.isfunction(inner) and inner.__name__ != "<lambda>" and not kind.is_function(inner):
        return f"is not {kind.noun}: {kind.advice}"
    return None


def start_tasks(tasks: list[Task], runtime: str) -> list[Any]:
    """Call every task's function; return the generators (``"coroutines"``)
    or coroutines (``"asyncio"``) they made, none of them started.

    A task must be a generator function (an ``async def`` for asyncio) --
    also through ``functools.partial``, a bound method or a
    ``functools.wraps`` decorator; a ``def`` of another kind is refused with
    ``TypeError`` before any task is called. Any other callable (a lambda, an
    object) is called and must return a generator (a coroutine); calling a
    generator function runs none of its body. On ``TypeError`` nothing was
    started and every object already made is closed.
    """
    kind = TASK_KINDS[runtime]
    for t in tasks:
        problem = _refusal(t.fn, kind)
        if problem:
            raise TypeError(f"task {t.name!r} {problem}")
    made: list[Any] = []
    try:
        for t in tasks:
            obj = t.call()
            if not kind.is_instance(obj):
                if inspect.isgenerator(obj) or inspect.iscoroutine(obj):
                    obj.close()  # never started: no "never awaited" warning
                raise TypeError(
                    f"task {t.name!r} returned {type(obj).__name__}, not what "
                    f"{kind.noun} returns: {kind.advice}"
                )
            made.append(obj)
    except BaseException:
        for obj in made:
            obj.close()
        raise
    return made


# -- the coroutines runtime ---------------------------------------------------


class Park:
    """What a waiting task yields to the scheduler: "resume me once
    ``condition`` is notified on ``owner``, or at ``deadline``".

    Made by the primitives' waiting methods and passed up through
    ``yield from``; a task never makes one itself.
    """

    __slots__ = ("condition", "deadline", "owner", "woken")

    def __init__(self, owner: object, condition: str, seconds: float | None) -> None:
        self.owner = owner
        self.condition = condition
        self.deadline = None if seconds is None else clock.now() + seconds
        self.woken = False

    def __repr__(self) -> str:
        return f"<Park for {self.condition} on {self.owner!r}>"


class Parking(Cooperative[Park]):
    """The coroutines runtime's driver: runs an algorithm from ``_core``,
    turning each wait request into a yielded :class:`Park`."""

    def _wake(self, waiter: Park) -> bool:
        waiter.woken = True
        return True

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


class _Held:
    """What ``yield from lock`` returns: a context manager that releases."""

    __slots__ = ("_lock",)

    def __init__(self, lock: CoroutineLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class CoroutineLock(Parking, LockCore):
    """A mutual-exclusion lock for generator tasks, like ``threading.Lock``.

    Take it with ``ok = yield from lock.acquire(blocking=True, timeout=-1)``
    or ``with (yield from lock): ...``; waiting suspends only the calling
    task. ``release()`` and ``locked()`` never wait; any task may release
    (as with ``threading.Lock``), and releasing an unlocked lock raises
    ``RuntimeError``. A plain ``with lock:`` takes a free lock and raises
    ``RuntimeError`` if it is held, since it cannot wait. Not FIFO-fair.
    """

    def __init__(self) -> None:
        self._init_waiters()
        self._held = _Held(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> Generator[Park, None, bool]:
        """Use as ``ok = yield from lock.acquire(...)``: take the lock,
        waiting (at most ``timeout`` seconds, unless -1) while it is held.
        Returns False if ``blocking`` is false or the time ran out."""
        return self._wait(self._acquire_steps(blocking, timeout))

    def release(self) -> None:
        """Release the lock and wake one waiting task. Never waits."""
        self._release()

    def __iter__(self) -> Generator[Park, None, _Held]:
        # `with (yield from lock):` -- wait for the lock, then hand `with` a
        # context manager whose exit releases it.
        yield from self.acquire()
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


class CoroutineQueue(Parking, CooperativeQueue[Park]):
    """A FIFO queue for generator tasks: ``queue.Queue`` with Python 3.13's
    ``shutdown()``, where the waiting methods are used with ``yield from``.

    ``yield from q.put(item, block=True, timeout=None)``,
    ``item = yield from q.get(block=True, timeout=None)`` and
    ``yield from q.join()`` suspend only the calling task; the other
    methods never wait.
    """

    def put(
        self, item: Any, block: bool = True, timeout: float | None = None
    ) -> Generator[Park, None, None]:
        """Use as ``yield from q.put(item)``: put ``item``, waiting (at most
        ``timeout`` seconds) for room. Raises :class:`~critsec.Full` if
        ``block`` is false or the time ran out, :class:`~critsec.ShutDown`
        if the queue is or gets shut down."""
        return self._wait(self._put_steps(item, block, timeout))

    def get(self, block: bool = True, timeout: float | None = None) -> Generator[Park, None, Any]:
        """Use as ``item = yield from q.get()``: remove and return the oldest
        item, waiting (at most ``timeout`` seconds) for one. Raises
        :class:`~critsec.Empty` if ``block`` is false or the time ran out,
        :class:`~critsec.ShutDown` once shut down and drained."""
        return self._wait(self._get_steps(block, timeout))

    def join(self) -> Generator[Park, None, None]:
        """Use as ``yield from q.join()``: wait until every item put has been
        marked done by ``task_done``."""
        return self._wait(self._join_steps())


@dataclass(eq=False)
class _Running:
    """A task being run: its generator, and the park it waits on, if any."""

    index: int
    name: str
    generator: Generator[Any, None, Any]
    park: Park | None = None

    def ready(self, now: float) -> bool:
        park = self.park
        return park is None or park.woken or (park.deadline is not None and park.deadline <= now)


def _where(generator: Generator[Any, None, Any]) -> str:
    """Source position of the innermost ``yield`` a generator is stopped at."""
    inner: Any = generator
    while isinstance(inner.gi_yieldfrom, types.GeneratorType):
        inner = inner.gi_yieldfrom
    frame = inner.gi_frame
    return "" if frame is None else f" at {frame.f_code.co_filename}:{frame.f_lineno}"


class CoroutinesRuntime(Runtime):
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

    def queue(self, maxsize: int = 0) -> CoroutineQueue:
        return CoroutineQueue(maxsize)

    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]:
        generators = start_tasks(tasks, "coroutines")
        live = [
            _Running(i, t.name, g) for i, (t, g) in enumerate(zip(tasks, generators, strict=True))
        ]
        outcomes = [Outcome() for _ in tasks]
        try:
            self._schedule(live, outcomes, timeout)
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

    def _schedule(
        self, live: list[_Running], outcomes: list[Outcome], timeout: float | None
    ) -> None:
        """Run tasks until all finished (``live`` empty) or one failed (it
        is removed from ``live``, its outcome recorded)."""
        rng = random.Random(self.seed) if self.order == "random" else None
        deadline = None if timeout is None else time.monotonic() + timeout
        turn = 0  # round-robin: where in `live` to look for the next task
        while live:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                names = ", ".join(running.name for running in live)
                raise TimeoutError(f"tasks still running after {timeout} s: {names}")
            count = len(live)
            chosen: int | None
            if rng is None:
                chosen = next(
                    (k % count for k in range(turn, turn + count) if live[k % count].ready(now)),
                    None,
                )
            else:
                ready = [k for k, running in enumerate(live) if running.ready(now)]
                chosen = rng.choice(ready) if ready else None
            if chosen is None:
                self._idle(live, now, deadline)
                continue
            running = live[chosen]
            try:
                request = running.generator.send(None)
            except StopIteration as stop:
                outcomes[running.index].value = stop.value
                del live[chosen]
                turn = chosen  # the next task moved into this slot
                continue
            except Exception as exc:  # becomes the run's TaskError
                outcomes[running.index] = Outcome.failure(exc)
                del live[chosen]
                return
            if request is not None and not isinstance(request, Park):
                hint = " (did you mean `yield from`?)" if inspect.isgenerator(request) else ""
                raise TypeError(
                    f"task {running.name!r} yielded {request!r}{_where(running.generator)}{hint}: "
                    "a task may only `yield` (a switch point) or wait with `yield from` on a "
                    "lock or queue method"
                )
            running.park = request
            turn = chosen + 1

    @staticmethod
    def _idle(live: list[_Running], now: float, deadline: float | None) -> None:
        """No task can run: sleep until the earliest deadline, or raise
        DeadlockError if no waiting task has one."""
        parks = [running.park for running in live if running.park is not None]
        deadlines = [park.deadline for park in parks if park.deadline is not None]
        if not deadlines:
            waits = "\n".join(
                f"  task {running.name!r} waits for {park.condition} ({park.owner!r})"
                for running in live
                if (park := running.park) is not None
            )
            raise DeadlockError(
                f"deadlock: every unfinished task waits and nothing can wake any of them:\n{waits}"
            )
        wake_at = min(deadlines) if deadline is None else min(min(deadlines), deadline)
        # The runtime honestly waiting for a timeout, not a guess.
        time.sleep(max(0.0, wake_at - now))

    def __repr__(self) -> str:
        seed = "" if self.seed is None else f", seed={self.seed!r}"
        return f"critsec.runtime({self.name!r}, order={self.order!r}{seed})"
