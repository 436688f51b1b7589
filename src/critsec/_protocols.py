"""The contracts: what a lock, a counter and a queue promise, on every runtime.

Every runtime's primitives satisfy these protocols (checked statically:
the runtimes' factories are typed with them; and at run time:
``isinstance(rt.lock(), critsec.Lock)``). There are three spellings of the
same contract, one per way a task waits:

* **blocking** (threads, processes): :class:`Lock`, :class:`Queue` --
  ``threading.Lock`` and ``queue.Queue`` semantics, ``shutdown()`` included
  on every Python;
* **generator** (coroutines): :class:`GeneratorLock`, :class:`GeneratorQueue`
  -- the same methods, but those that may wait return a :class:`Yielding`
  to be used with ``yield from``;
* **async** (asyncio): :class:`AsyncLock`, :class:`AsyncQueue` --
  ``asyncio.Lock`` and ``asyncio.Queue`` semantics.

:class:`Counter` is one contract everywhere: nothing about it ever waits
for another task.

"Who may call" below means: a task of the runtime that made the primitive
(a thread of this process for threads; any process that received it as a
task argument for processes; a task of one ``run()`` for coroutines and
asyncio), or the code that made it, between runs. A method that "never
waits" may still take an internal lock for an instant.
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = [
    "AsyncLock",
    "AsyncQueue",
    "Counter",
    "GeneratorLock",
    "GeneratorQueue",
    "Lock",
    "Queue",
    "Yielding",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class Counter(Protocol):
    """A shared integer.

    ``value`` reads or writes it; ``counter.value += 1`` is a read *then* a
    write, deliberately not atomic -- between them another task may write
    (on threads and processes at any instant; on coroutines and asyncio
    only where the task yields or awaits), and that update is lost.
    ``add`` is atomic. Any task of the runtime may call either; neither
    waits for another task. ``TypeError`` for a value that is not an int;
    ``OverflowError`` outside int64 where the storage is int64 (processes).
    """

    @property
    def value(self) -> int:
        """The value now (may change at once). Never waits."""

    @value.setter
    def value(self, new: int) -> None:
        """Overwrite the value with ``new``. Never waits."""

    def add(self, delta: int) -> int:
        """Atomically add ``delta``; return the new value. Never waits for
        another task (on threads and processes it holds an internal lock
        for an instant)."""


@runtime_checkable
class Lock(Protocol):
    """A mutual-exclusion lock with ``threading.Lock``'s semantics, for
    blocking tasks (threads, processes).

    Not reentrant. Any task may release it, not only the holder (as with
    ``threading.Lock``). Not FIFO-fair: the operating system picks among
    waiters.
    """

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock; returns whether it was taken. Blocks the calling
        thread while it is held, unless ``blocking`` is false, for at most
        ``timeout`` seconds (-1: no limit). ``ValueError`` for a timeout
        with ``blocking=False`` or a negative one other than -1,
        ``TypeError`` for a timeout that is not a number."""

    def release(self) -> None:
        """Release the lock, waking one waiter. Never waits.
        ``RuntimeError`` if it is not held."""

    def locked(self) -> bool:
        """Whether some task holds the lock now (may change at once)."""

    def __enter__(self) -> bool:
        """``with lock:`` -- ``acquire()``, waiting as long as it takes."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving ``with lock:`` -- ``release()``."""


class _QueueNow(Protocol[T]):
    """What every queue does without waiting, whatever its runtime."""

    @property
    def maxsize(self) -> float:
        """The bound it was made with; ``<= 0`` means none."""

    def put_nowait(self, item: T) -> None:
        """Put ``item`` at once, or raise ``Full`` (``ShutDown`` once shut
        down). Never waits."""

    def get_nowait(self) -> T:
        """Remove and return the oldest item at once, or raise ``Empty``
        (``ShutDown`` once shut down and empty). Never waits."""

    def task_done(self) -> None:
        """Mark one item taken by ``get`` as processed (for ``join``).
        Never waits. ``ValueError`` if called more often than items were put."""

    def shutdown(self, immediate: bool = False) -> None:
        """Stop the queue, never waiting: later puts raise ``ShutDown`` and
        blocked putters wake and raise it; getters drain what is left, then
        raise it. ``immediate=True`` discards what is left (counting it as
        done for ``join``), so blocked getters raise at once."""

    def qsize(self) -> int:
        """Items in the queue at this instant."""

    def empty(self) -> bool:
        """``qsize() == 0`` at this instant."""

    def full(self) -> bool:
        """``0 < maxsize <= qsize()`` at this instant."""

    @property
    def is_shutdown(self) -> bool:
        """True once ``shutdown()`` was called."""

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done by ``task_done``."""


@runtime_checkable
class Queue(_QueueNow[T], Protocol[T]):
    """A FIFO queue with ``queue.Queue``'s semantics, and Python 3.13's
    ``shutdown()`` on every Python, for blocking tasks (threads, processes).

    ``put``/``get``/``join`` block the calling thread only. ``Full``,
    ``Empty`` and ``ShutDown`` are critsec's (also ``queue.Full``, ...);
    a timeout that is negative is a ``ValueError``, one that is not a
    number a ``TypeError``.
    """

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` at the end. While the queue is full, blocks (at most
        ``timeout`` seconds, None: no limit) unless ``block`` is false.
        ``Full`` if ``block`` is false or the time ran out; ``ShutDown``
        if the queue is or gets shut down meanwhile."""

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item. While the queue is empty,
        blocks (at most ``timeout`` seconds) unless ``block`` is false.
        ``Empty`` if ``block`` is false or the time ran out; ``ShutDown``
        once the queue is shut down and empty."""

    def join(self) -> None:
        """Block until every item put was marked done by ``task_done``."""


@runtime_checkable
class Yielding(Protocol[T_co]):
    """What a coroutines-runtime method that may wait returns: the wait
    itself, done by ``yield from`` (``ok = yield from lock.acquire()``).
    Called without ``yield from`` it would do nothing; the runtime fails
    the task with a ``TypeError`` instead."""

    def __iter__(self) -> Generator[Any, None, T_co]: ...


@runtime_checkable
class GeneratorLock(Protocol):
    """:class:`Lock`'s contract for generator tasks (the coroutines
    runtime): waiting suspends only the calling task, at a ``yield from``.

    ``ok = yield from lock.acquire(blocking=True, timeout=-1)`` or
    ``with (yield from lock):``; a plain ``with lock:`` takes a free lock
    and raises ``RuntimeError`` if it is held, since it cannot wait. Not
    FIFO-fair. ``release``/``locked`` never wait.
    """

    def acquire(self, blocking: bool = True, timeout: float = -1) -> Yielding[bool]:
        """``ok = yield from lock.acquire(...)``: as :meth:`Lock.acquire`,
        suspending the task while it waits."""

    def release(self) -> None:
        """Release the lock, waking one waiting task. ``RuntimeError`` if
        it is not held."""

    def locked(self) -> bool:
        """Whether some task holds the lock."""

    def __iter__(self) -> Generator[Any, None, Any]:
        """``with (yield from lock):`` -- wait for the lock; the ``with``
        releases it."""


@runtime_checkable
class GeneratorQueue(_QueueNow[T], Protocol[T]):
    """:class:`Queue`'s contract for generator tasks (the coroutines
    runtime): ``yield from q.put(item)``, ``item = yield from q.get()``,
    ``yield from q.join()`` suspend only the calling task; the other
    methods never wait and are plain calls."""

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> Yielding[None]:
        """``yield from q.put(item)``: as :meth:`Queue.put`."""

    def get(self, block: bool = True, timeout: float | None = None) -> Yielding[T]:
        """``item = yield from q.get()``: as :meth:`Queue.get`."""

    def join(self) -> Yielding[None]:
        """``yield from q.join()``: as :meth:`Queue.join`."""


@runtime_checkable
class AsyncLock(Protocol):
    """A lock with ``asyncio.Lock``'s semantics, for asyncio tasks:
    ``async with lock:`` or ``await lock.acquire()``; waiting suspends only
    the calling task. FIFO-fair. Takes no timeout (wrap the call in
    ``asyncio.timeout()``: cancellation is safe)."""

    async def acquire(self) -> bool:
        """Take the lock, waiting while it is held; returns True."""

    def release(self) -> None:
        """Release the lock, waking the first waiter. Never waits.
        ``RuntimeError`` if it is not held."""

    def locked(self) -> bool:
        """Whether some task holds the lock."""

    async def __aenter__(self) -> None:
        """``async with lock:`` -- ``await acquire()``."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving ``async with lock:`` -- ``release()``."""


@runtime_checkable
class AsyncQueue(_QueueNow[T], Protocol[T]):
    """A queue with ``asyncio.Queue``'s semantics, and Python 3.13's
    ``shutdown()`` on every Python, for asyncio tasks: ``await put``,
    ``await get``, ``await join`` suspend only the calling task; no
    timeouts (use ``asyncio.timeout()``); the other methods never wait."""

    async def put(self, item: T) -> None:
        """Put ``item``, waiting while the queue is full. ``ShutDown`` if
        the queue is or gets shut down."""

    async def get(self) -> T:
        """Remove and return the oldest item, waiting while it is empty.
        ``ShutDown`` once shut down and empty."""

    async def join(self) -> None:
        """Wait until every item put was marked done by ``task_done``."""
