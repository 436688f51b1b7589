"""One queue algorithm, many ways to wait.

Design
------
A bounded queue with ``task_done``/``join`` and Python 3.13's ``shutdown``
has a handful of subtle rules: who raises ``ShutDown`` when, how a timeout
is measured, what ``shutdown(immediate=True)`` does to the unfinished-task
count. critsec's promise is that these rules are *the same* on every
runtime, so they are written exactly once, here, following CPython 3.13's
``queue.Queue`` line by line.

The trick (borrowed from "sans-I/O" protocol libraries) is that the
algorithm never blocks. Each operation is a generator that *yields a wait
request* -- ``(condition, seconds_left)`` -- whenever it would block, and
is resumed once the condition was notified or the time ran out. Every
runtime drives these generators with its own way of waiting:

* threads and processes: ``Condition.wait(timeout)`` under one mutex
  (:class:`BlockingQueue` below);
* coroutines: the generator task itself yields to the scheduler;
* asyncio: awaiting a future.

The storage (a deque, a ring buffer in shared memory) and where the
counters live (Python attributes, shared memory) are hooks as well.

The cooperative lock used by coroutines and asyncio follows the same
pattern (:class:`LockCore`).
"""

from __future__ import annotations

import collections
import numbers
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from .._errors import Empty, Full, ShutDown

T = TypeVar("T")

# Condition names. Readable strings, because they appear in deadlock reports
# ("consumer waits for queue not empty").
NOT_EMPTY = "queue not empty"
NOT_FULL = "queue not full"
ALL_DONE = "all queue tasks done"
UNLOCKED = "lock released"

#: What an operation yields when it must wait: the condition it waits for and
#: the seconds it may still wait (``None``: no limit).
WaitRequest = tuple[str, float | None]
Steps = Generator[WaitRequest, None, T]


def _monotonic() -> float:
    # ``time.monotonic`` looked up at each call, so a patched one is honoured
    # (the thread explorer patches it for a schedule).
    return time.monotonic()


class Clock(threading.local):
    """The clock every deadline here is measured on: ``time.monotonic``,
    except on a thread where the explorer runs generator tasks in virtual
    time (it sets ``now`` for that schedule and restores it). Per thread, so
    a schedule's virtual time never leaks into real runs on other threads."""

    def __init__(self) -> None:
        self.now: Callable[[], float] = _monotonic


clock = Clock()


def _seconds(value: Any, name: str) -> float:
    """``value`` if it is a number of seconds; else ``TypeError`` naming the
    argument (the comparison with 0 would fail with a riddle otherwise)."""
    if type(value) in (int, float) or isinstance(value, numbers.Real):
        return value  # type: ignore[no-any-return]
    raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")


def check_timeout(block: bool, timeout: float | None) -> float | None:
    """The deadline for a wait, validated like ``queue.Queue`` does."""
    if not block or timeout is None:
        return None
    if _seconds(timeout, "timeout") < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return clock.now() + timeout


def time_left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - clock.now()


def check_lock_args(blocking: bool, timeout: float) -> float | None:
    """The deadline for ``acquire(blocking, timeout)``, checked as
    ``threading.Lock.acquire`` checks it (-1: no deadline)."""
    if timeout == -1:  # the default, on every waiting acquire: nothing to check
        return None
    if not blocking:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if _seconds(timeout, "timeout") < 0:
        raise ValueError("timeout value must be a non-negative number")
    if timeout > threading.TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")
    return clock.now() + timeout


def check_maxsize(maxsize: float) -> float:
    """``maxsize`` as ``queue.Queue`` and ``asyncio.Queue`` take it: any
    number, ``<= 0`` meaning no bound (floats work: ``2.5`` admits 3 items)."""
    if isinstance(maxsize, bool) or not isinstance(maxsize, numbers.Real):
        raise TypeError(f"maxsize must be a number, got {type(maxsize).__name__}")
    return maxsize


def check_counter_value(value: int) -> int:
    """``value`` if a counter may hold it: an int (not a bool); else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a counter holds an int, got {type(value).__name__}")
    return value


class PlainCounter:
    """An int counter in this process's memory: ``value`` is a plain read
    or a plain write; ``add`` adds and returns the new value. Runtimes
    decide what makes ``add`` atomic (nothing needs to, where tasks switch
    only at ``yield``; a lock does, for threads)."""

    def __init__(self, initial: int = 0) -> None:
        self._value = check_counter_value(initial)

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, new: int) -> None:
        # The type test first: the setter is on the lesson's hot path.
        self._value = new if type(new) is int else check_counter_value(new)

    def add(self, delta: int) -> int:
        """Add ``delta``; return the new value."""
        if type(delta) is not int:
            check_counter_value(delta)
        self._value += delta
        return self._value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self._value}>"


def run_nowait(steps: Steps[T]) -> T:
    """Run an operation that was asked not to block (it must not yield)."""
    try:
        request = next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    steps.close()
    raise AssertionError(f"a non-blocking operation asked to wait for {request[0]}")


class QueueCore(Generic[T]):
    """The queue algorithm (CPython 3.13 ``queue.Queue``), free of any waiting.

    Subclasses provide storage (``_qsize``, ``_put``, ``_get``), the state
    (``_unfinished``, ``_is_shutdown``; plain attributes by default) and
    ``_notify(condition, all)``. Callers must make each operation atomic
    (hold a mutex, or run on one thread without switching inside it).
    """

    maxsize: float
    _unfinished: int = 0
    _is_shutdown: bool = False

    # -- hooks -------------------------------------------------------------
    def _qsize(self) -> int:
        raise NotImplementedError

    def _put(self, item: T) -> None:
        raise NotImplementedError

    def _get(self) -> T:
        raise NotImplementedError

    def _full(self, item: T) -> bool:
        """True when ``item`` cannot be stored now (storage may add limits)."""
        return 0 < self.maxsize <= self._qsize()

    def _available(self) -> bool:
        """True when a getter may take an item now (storage may add limits:
        a redelivering queue also needs room to track what was taken)."""
        return bool(self._qsize())

    def _drained(self) -> bool:
        """Nothing left for a getter of a shut-down queue (a redelivering
        queue first takes back what dead takers held)."""
        return not self._qsize()

    def _discard(self) -> None:
        """Drop the oldest item (``shutdown(immediate=True)``)."""
        self._get()

    def _notify(self, condition: str, all: bool = False) -> None:
        raise NotImplementedError

    # -- operations --------------------------------------------------------
    def _put_steps(self, item: T, block: bool, timeout: float | None) -> Steps[None]:
        deadline = check_timeout(block, timeout)
        if self._is_shutdown:
            raise ShutDown
        if not block:
            if self._full(item):
                raise Full
        else:
            while self._full(item):
                left = time_left(deadline)
                if left is not None and left <= 0:
                    raise Full
                yield NOT_FULL, left
                if self._is_shutdown:
                    raise ShutDown
        self._put(item)
        self._unfinished += 1
        self._notify(NOT_EMPTY)

    def _get_steps(self, block: bool, timeout: float | None) -> Steps[T]:
        deadline = check_timeout(block, timeout)
        if self._is_shutdown and self._drained():
            raise ShutDown
        if not block:
            if not self._available():
                raise Empty
        else:
            while not self._available():
                left = time_left(deadline)
                if left is not None and left <= 0:
                    raise Empty
                yield NOT_EMPTY, left
                if self._is_shutdown and self._drained():
                    raise ShutDown
        item = self._get()
        self._notify(NOT_FULL)
        return item

    def _join_steps(self) -> Steps[None]:
        while self._unfinished:
            yield ALL_DONE, None

    def _task_done(self) -> None:
        unfinished = self._unfinished - 1
        if unfinished <= 0:
            if unfinished < 0:
                raise ValueError("task_done() called too many times")
            self._notify(ALL_DONE, all=True)
        self._unfinished = unfinished

    def _shutdown(self, immediate: bool) -> None:
        self._is_shutdown = True
        if immediate:
            while self._qsize():
                self._discard()
                if self._unfinished > 0:
                    self._unfinished -= 1
            # Nothing is left to work on: release join() waiters to re-check.
            self._notify(ALL_DONE, all=True)
        # Every waiter must re-check: getters may now raise, putters must.
        self._notify(NOT_EMPTY, all=True)
        self._notify(NOT_FULL, all=True)

    # -- plain queries (no waiting) ----------------------------------------
    def _is_full(self) -> bool:
        return 0 < self.maxsize <= self._qsize()


class DequeStorage:
    """Storage for :class:`QueueCore` in this process's memory: a deque.
    Put it before ``QueueCore`` among the bases so its hooks are the ones used."""

    def _init_storage(self) -> None:
        self._items: collections.deque[Any] = collections.deque()

    def _qsize(self) -> int:
        return len(self._items)

    def _put(self, item: Any) -> None:
        self._items.append(item)

    def _get(self) -> Any:
        return self._items.popleft()


class BlockingQueue(QueueCore[T]):
    """Drives :class:`QueueCore` with real blocking: one mutex, three conditions.

    Used by the threads runtime (``threading``) and the processes runtime
    (``multiprocessing`` primitives in shared memory); the public methods
    match ``queue.Queue`` exactly.
    """

    _mutex: Any
    _conditions: dict[str, Any]

    def _init_sync(self, mutex: Any, condition: Any) -> None:
        self._mutex = mutex
        self._conditions = {name: condition(mutex) for name in (NOT_EMPTY, NOT_FULL, ALL_DONE)}

    def _notify(self, condition: str, all: bool = False) -> None:
        cond = self._conditions[condition]
        if all:
            cond.notify_all()
        else:
            cond.notify()

    def _drive(self, steps: Steps[Any]) -> Any:
        with self._mutex:
            return self._drive_locked(steps)

    def _drive_locked(self, steps: Steps[Any]) -> Any:
        """``_drive`` with the mutex already held (after a fast path failed)."""
        try:
            condition, left = next(steps)
            while True:
                self._conditions[condition].wait(left)
                condition, left = steps.send(None)
        except StopIteration as done:
            return done.value

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item``; if the queue is full, wait (at most ``timeout`` seconds)
        for room. Raises :class:`Full` if ``block`` is false or the time ran
        out, :class:`ShutDown` if the queue is or gets shut down."""
        self._drive(self._put_steps(item, block, timeout))

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item; wait for one if empty (at most
        ``timeout`` seconds). Raises :class:`Empty` if ``block`` is false or
        the time ran out, :class:`ShutDown` once shut down and drained."""
        return self._drive(self._get_steps(block, timeout))  # type: ignore[no-any-return]

    def put_nowait(self, item: T) -> None:
        """``put(item, block=False)``."""
        self.put(item, block=False)

    def get_nowait(self) -> T:
        """``get(block=False)``."""
        return self.get(block=False)

    def task_done(self) -> None:
        """Mark one item taken by ``get`` as fully processed (for ``join``)."""
        with self._mutex:
            self._task_done()

    def join(self) -> None:
        """Wait until every item put has been marked done by ``task_done``."""
        self._drive(self._join_steps())

    def shutdown(self, immediate: bool = False) -> None:
        """Stop the queue: later ``put`` calls raise :class:`ShutDown` and
        blocked putters wake and raise it; getters drain what is left, then
        raise it. ``immediate=True`` discards what is left (counting it as
        done for ``join``), so getters raise at once."""
        with self._mutex:
            self._shutdown(immediate)

    def qsize(self) -> int:
        """Items in the queue now (exact at this instant; may change at once)."""
        with self._mutex:
            return self._qsize()

    def empty(self) -> bool:
        """``qsize() == 0`` at this instant."""
        with self._mutex:
            return not self._qsize()

    def full(self) -> bool:
        """``0 < maxsize <= qsize()`` at this instant."""
        with self._mutex:
            return self._is_full()

    @property
    def is_shutdown(self) -> bool:
        """True once ``shutdown()`` was called."""
        return bool(self._is_shutdown)

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done."""
        return int(self._unfinished)


class LockCore:
    """A lock's algorithm for cooperative runtimes (coroutines, asyncio).

    Only one task runs at a time there, so ``_locked`` needs no protection;
    waiting is a yielded request for the ``UNLOCKED`` condition, which
    ``release`` notifies. Unless ``_fair`` is set, a task that arrives
    while a woken waiter has not yet run may take the lock first (as with
    ``threading.Lock``); the woken one simply waits again.
    """

    _locked: bool = False
    #: FIFO-fair, like ``asyncio.Lock``: waiters get the lock in the order
    #: they started waiting. Off by default, like ``threading.Lock``.
    _fair: bool = False

    def _notify(self, condition: str, all: bool = False) -> None:
        raise NotImplementedError

    def _queued(self, condition: str) -> bool:
        """Some task waits for ``condition``, or was woken and has not run yet."""
        raise NotImplementedError

    def _acquire_steps(self, blocking: bool, timeout: float) -> Steps[bool]:
        deadline = check_lock_args(blocking, timeout)
        # A fair lock that is free but promised to tasks already waiting is
        # not taken past them: the newcomer queues behind.
        overtaking = self._fair and self._queued(UNLOCKED)
        if not blocking:
            if self._locked or overtaking:
                return False
        else:
            while self._locked or overtaking:
                left = time_left(deadline)
                if left is not None and left <= 0:
                    return False
                yield UNLOCKED, left
                overtaking = False
        self._locked = True
        return True

    def _release(self) -> None:
        if not self._locked:
            raise RuntimeError("release unlocked lock")
        self._locked = False
        self._notify(UNLOCKED)

    def locked(self) -> bool:
        """True while some task holds the lock."""
        return self._locked
