"""What the two cooperative runtimes -- coroutines and asyncio -- share.

In both, one task runs at a time and switches only where it yields (or
awaits), so a primitive needs no mutex: the algorithms of ``_core`` run
unprotected, and waiting is parking a task on the primitive's waiter list
for a condition until a notify wakes it. The runtimes differ only in what
a waiter is (a :class:`~._coroutines.Park` yielded to the scheduler, an
asyncio future) and in how their waiting methods are spelt (``yield from``,
``await``). Here: the waiter lists (:class:`Cooperative`), the counter,
the queue's non-waiting half, and the start of a run (:func:`start_tasks`).
"""

from __future__ import annotations

import collections
from typing import Any, Generic, TypeVar

from .._task import Kind, Task, check_kind, check_made
from ._ccounter import Counter
from ._core import (
    ALL_DONE,
    NOT_EMPTY,
    NOT_FULL,
    DequeStorage,
    QueueCore,
    check_maxsize,
    run_nowait,
)

__all__ = ["Cooperative", "CooperativeCounter", "CooperativeQueue", "start_tasks"]

T = TypeVar("T")
W = TypeVar("W")


class Cooperative(Generic[W]):
    """Waiter lists for a primitive of a cooperative runtime (one task runs
    at a time): for each condition, the waiters in arrival order.

    ``_notify`` (called by the algorithms in ``_core``) wakes the first
    waiter that accepts, or all of them. ``_wake`` says how to wake one
    waiter of this runtime and whether it accepted: a park always does; an
    asyncio future that was cancelled does not, and the next one is tried.
    """

    _waiters: dict[str, collections.deque[W]]
    #: Waiters woken that have not run yet, per condition: a fair lock
    #: counts them as still queued (see ``LockCore._fair``).
    _woken: dict[str, int]

    def _init_waiters(self, *conditions: str) -> None:
        # Plain dicts with every condition of the primitive in them, not a
        # defaultdict and a Counter: lookups of an exact dict are several
        # times faster, and the waiting paths make a few at every wait.
        self._waiters = {condition: collections.deque() for condition in conditions}
        self._woken = dict.fromkeys(conditions, 0)

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


class CooperativeCounter(Counter):
    """An integer shared by the tasks of a cooperative runtime (coroutines,
    asyncio).

    ``value`` reads or writes it; ``add(delta)`` adds and returns the new
    value. Tasks switch only where they yield (or await), so ``add`` and
    ``counter.value += 1`` are both atomic *unless* the task yields between
    a read and its write -- which is how lost updates are shown here. Never
    blocks; any task of the run may call it.

    It is :class:`~._core.PlainCounter` written in C (``_ccounter.c``):
    ``value`` is then a C attribute, not a property, and the lesson's loop
    runs at the speed of a plain attribute (issue 9).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self.value}>"


class CooperativeQueue(Cooperative[W], DequeStorage, QueueCore[T]):
    """The methods of a cooperative runtime's queue that never wait.

    The queue is ``queue.Queue`` with Python 3.13's ``shutdown()`` (the
    algorithm is :class:`~._core.QueueCore`); subclasses add the waiting
    ``put``/``get``/``join`` in their runtime's style. Any task of the run
    may call these methods; none of them waits or switches.
    """

    def __init__(self, maxsize: float = 0) -> None:
        self.maxsize = check_maxsize(maxsize)
        self._init_storage()
        self._init_waiters(NOT_EMPTY, NOT_FULL, ALL_DONE)

    def put_nowait(self, item: T) -> None:
        """Put ``item`` at once, or raise :class:`~critsec.Full` if the queue
        is full (:class:`~critsec.ShutDown` if it was shut down)."""
        run_nowait(self._put_steps(item, False, None))

    def get_nowait(self) -> T:
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


def start_tasks(tasks: list[Task], kind: Kind) -> list[Any]:
    """Call every task's function; return the generators (``kind`` is
    ``"generator"``) or coroutines (``"async"``) they made, none started.

    A task of another kind is refused with ``TypeError`` before any task
    is called (:func:`~critsec._task.check_kind`). A callable whose kind
    only a call can tell (a lambda, an object) is called and must return a
    generator (a coroutine); calling a generator function runs none of its
    body. On ``TypeError`` nothing was started and every object already
    made is closed.
    """
    check_kind(tasks, kind)
    made: list[Any] = []
    try:
        for t in tasks:
            made.append(check_made(t.name, t.call(), kind))
    except BaseException:
        for obj in made:
            obj.close()
        raise
    return made
