"""The asyncio runtime: ``async def`` tasks on one event loop.

Tasks are coroutine functions; ``run()`` runs them concurrently under
``asyncio.run`` with ``asyncio.TaskGroup`` semantics (when one task fails,
the others are cancelled). Inside async code, where ``run()`` would need a
second event loop, ``await rt.run_async(...)`` does the same in the
running loop.

``run(timeout=...)`` is ``asyncio.timeout()`` around the tasks, backed by
a watchdog (:mod:`critsec._watchdog`) for a task that never awaits and so
blocks the loop: at the deadline it raises an exception inside that task
(never inside these primitives or the loop's own machinery). ``run_async``
relies on ``asyncio.timeout()`` alone: the loop is the caller's, and an
exception thrown into it from outside could strike any of their code.

The lock behaves like ``asyncio.Lock`` (``async with lock``,
``await lock.acquire()``), the queue like ``asyncio.Queue`` plus Python
3.13's ``shutdown()`` on every Python; their algorithms are
:class:`~._core.LockCore` and :class:`~._core.QueueCore`, shared with every
runtime. The driver here turns each wait request into a future, put on the
primitive's waiter list for that condition and awaited. Like asyncio's own
primitives, these take no timeout: requests carry ``None``, and a timeout
is ``asyncio.timeout()`` around the call -- that is, cancellation.

Cancellation safety (as ``asyncio.Queue``): a waiter cancelled while on a
list is removed from it; a waiter cancelled *after* it was notified, before
it could act, passes the notification on to the next waiter, so no wake-up
is lost.

The primitives are not bound to an event loop: a future is made from the
running loop each time a task waits. So a lock or queue made before
``run()`` works in that run and in later ones. Like asyncio's primitives
they are not thread-safe: use them from the tasks of one loop at a time.
"""

from __future__ import annotations

import asyncio
import os
import types
from collections.abc import Callable
from typing import Any, TypeVar

from .._outcome import Outcome, collect, overdue
from .._protocols import AsyncLock, AsyncQueue
from .._runtime import Runtime
from .._task import Task
from .._watchdog import Overtime, Watchdog
from ._cooperative import Cooperative, CooperativeCounter, CooperativeQueue, start_tasks
from ._core import NOT_EMPTY, NOT_FULL, UNLOCKED, LockCore, Steps

__all__ = ["AsyncioLock", "AsyncioQueue", "AsyncioRuntime"]

T = TypeVar("T")

Waiter = asyncio.Future[None]

#: Code a run's watchdog does not interrupt (see critsec._watchdog), besides
#: the standard library's -- the event loop among it: these primitives.
_SPARED = (os.path.join(os.path.dirname(os.path.abspath(__file__)), ""),)


class Awaiting(Cooperative[Waiter]):
    """The asyncio runtime's driver: runs an algorithm from ``_core``,
    turning each wait request into an awaited future."""

    def _wake(self, waiter: Waiter) -> bool:
        if waiter.done():  # cancelled, its task not yet resumed: try the next
            return False
        waiter.set_result(None)
        return True

    async def _wait(self, steps: Steps[T]) -> T:
        try:
            condition, _ = next(steps)  # no timeouts here: seconds_left is None
            create_future = asyncio.get_running_loop().create_future
            while True:
                waiter = create_future()
                waiters = self._waiters[condition]
                waiters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        # Notified, but this task will not act on it: pass it on.
                        self._woken[condition] -= 1
                        self._notify(condition)
                    else:
                        waiter.cancel()
                        if waiter in waiters:
                            waiters.remove(waiter)
                    raise
                self._woken[condition] -= 1
                condition, _ = steps.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            steps.close()


_WAIT = Awaiting._wait.__code__


def waits(frame: types.FrameType) -> tuple[str, Awaiting] | None:
    """What a task suspended in ``frame`` waits for in one of these
    primitives: (the condition, the primitive); None if ``frame`` is not
    a primitive's wait. The explorer's hook: it names a task's wait in a
    trace without knowing how the primitives wait."""
    if frame.f_code is not _WAIT:
        return None
    return frame.f_locals["condition"], frame.f_locals["self"]


class AsyncioLock(Awaiting, LockCore):
    """A mutual-exclusion lock for asyncio tasks, like ``asyncio.Lock``.

    ``async with lock:`` or ``await lock.acquire()`` (returns True) waits,
    suspending only the calling task, while the lock is held; ``release()``
    and ``locked()`` never wait. Releasing an unlocked lock raises
    ``RuntimeError``. FIFO-fair, as ``asyncio.Lock`` documents: waiters
    get the lock in the order they started waiting.
    """

    _fair = True

    def __init__(self) -> None:
        self._init_waiters(UNLOCKED)

    async def acquire(self) -> bool:
        """Take the lock, waiting while it is held; returns True."""
        if not (self._locked or self._waiters[UNLOCKED] or self._woken[UNLOCKED]):
            # Free, and no waiter to pass (FIFO: _queued, inlined): what
            # _acquire_steps would conclude without waiting, minus building
            # its coroutine and generator. No switch point either way.
            self._locked = True
            return True
        return await self._wait(self._acquire_steps(True, -1))

    def release(self) -> None:
        """Release the lock and wake one waiting task. Never waits."""
        self._release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<AsyncioLock {'locked' if self._locked else 'unlocked'}>"


class AsyncioQueue(Awaiting, CooperativeQueue[Waiter, T]):
    """A FIFO queue for asyncio tasks, like ``asyncio.Queue`` with Python
    3.13's ``shutdown()`` on every Python.

    ``await put(item)``, ``await get()`` and ``await join()`` wait,
    suspending only the calling task; the other methods never wait.
    ``put_nowait``/``get_nowait`` raise :class:`~critsec.Full` /
    :class:`~critsec.Empty`, which are also ``asyncio.QueueFull`` /
    ``asyncio.QueueEmpty``.
    """

    async def put(self, item: T) -> None:
        """Put ``item``, waiting for room while the queue is full. Raises
        :class:`~critsec.ShutDown` if the queue is or gets shut down."""
        if not (self._is_shutdown or self._full(item)):
            # Room now: _put_steps' own ending, without its generator and
            # the coroutine that drives it (the hooks stay the same).
            self._put(item)
            self._unfinished += 1
            if self._waiters[NOT_EMPTY]:  # _notify would find no one otherwise
                self._notify(NOT_EMPTY)
            return
        await self._wait(self._put_steps(item, True, None))

    async def get(self) -> T:
        """Remove and return the oldest item, waiting for one while empty.
        Raises :class:`~critsec.ShutDown` once shut down and drained."""
        if not self._is_shutdown and self._available():
            # An item now: _get_steps' own ending, as in put().
            item: T = self._get()
            if self._waiters[NOT_FULL]:
                self._notify(NOT_FULL)
            return item
        return await self._wait(self._get_steps(True, None))

    async def join(self) -> None:
        """Wait until every item put has been marked done by ``task_done``."""
        await self._wait(self._join_steps())


class AsyncioRuntime(Runtime[AsyncLock, AsyncQueue[Any]]):
    """Tasks are ``async def`` functions run concurrently on one event loop."""

    name = "asyncio"
    style = "async"

    def lock(self) -> AsyncioLock:
        return AsyncioLock()

    def counter(self, initial: int = 0) -> CooperativeCounter:
        return CooperativeCounter(initial)

    def queue(self, maxsize: float = 0) -> AsyncioQueue[Any]:
        return AsyncioQueue(maxsize)

    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "run() cannot start an event loop inside a running one: in async code write "
                "`await rt.run_async(...)`"
            )
        finished: set[int] = set()
        try:
            # asyncio.timeout() ends a run whose tasks await; the watchdog
            # interrupts a task that never does (it blocks the whole loop).
            with Watchdog(timeout, spared=_SPARED, library=True):
                return asyncio.run(self._gather(tasks, timeout, finished))
        except BaseException as exc:
            struck = isinstance(exc, Overtime) or (
                isinstance(exc, BaseExceptionGroup) and exc.subgroup(Overtime) is not None
            )
            if struck:
                unfinished = [t.name for i, t in enumerate(tasks) if i not in finished]
                raise overdue(timeout, unfinished) from None
            raise

    async def run_async(
        self, *tasks: Task | Callable[..., Any], timeout: float | None = None
    ) -> list[Any]:
        """``run()`` for async code: run ``tasks`` concurrently in the running
        event loop and wait for all of them (suspends only the caller).

        Same contract as ``run()``: the return values in order;
        :class:`~critsec.TaskError` for a failed task (the others are
        cancelled); ``TimeoutError`` naming the unfinished tasks once
        ``timeout`` seconds passed.
        """
        prepared = self._prepare(tasks, timeout)
        return await self._gather(prepared, timeout, set()) if prepared else []

    async def _gather(
        self, tasks: list[Task], timeout: float | None, finished: set[int]
    ) -> list[Any]:
        """Run ``tasks`` in the running loop; ``finished`` collects the
        indexes of those that ended."""
        coroutines = start_tasks(tasks, "async")
        outcomes = [Outcome() for _ in tasks]

        async def one(index: int, coroutine: Any) -> None:
            try:
                value = await coroutine
            except Exception as exc:
                outcomes[index] = Outcome.failure(exc)
                finished.add(index)
                raise  # so that the TaskGroup cancels the others
            outcomes[index].value = value
            finished.add(index)

        try:
            async with asyncio.timeout(timeout):
                async with asyncio.TaskGroup() as group:
                    for index, (t, coroutine) in enumerate(zip(tasks, coroutines, strict=True)):
                        group.create_task(one(index, coroutine), name=t.name)
        except TimeoutError:
            unfinished = [t.name for i, t in enumerate(tasks) if i not in finished]
            raise overdue(timeout, unfinished) from None
        except BaseExceptionGroup:
            if not any(outcome.failed for outcome in outcomes):
                raise
        return collect([t.name for t in tasks], outcomes)
