"""The threads runtime: real ``threading`` threads sharing memory.

The lock is ``threading.Lock`` itself. The counter's ``value`` is a plain
read and a plain write: between them the interpreter may switch threads
(the property call is a switch point even under the GIL), which is exactly
how ``counter.value += 1`` loses updates without a lock.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from .._outcome import Outcome, collect, overdue
from .._protocols import Lock, Queue
from .._runtime import Runtime
from .._task import Task, check_result
from ._core import (
    NOT_EMPTY,
    NOT_FULL,
    BlockingQueue,
    DequeStorage,
    PlainCounter,
    check_counter_value,
    check_maxsize,
)

__all__ = ["ThreadCounter", "ThreadQueue", "ThreadsRuntime"]

T = TypeVar("T")


class ThreadCounter(PlainCounter):
    """An integer shared by threads.

    ``value`` reads or writes it; ``counter.value += 1`` is a read then a
    write and is *not* atomic -- the race the lesson is about. ``add(delta)``
    is atomic (it holds an internal lock) and returns the new value. Safe to
    call from any thread; never blocks except briefly inside ``add``.
    """

    def __init__(self, initial: int = 0) -> None:
        super().__init__(initial)
        self._lock = threading.Lock()

    def add(self, delta: int) -> int:
        """Atomically add ``delta``; return the new value."""
        # Checked outside the lock, the add inlined inside it: the less a
        # thread does holding the lock, the shorter the convoy behind it
        # (a call to super().add() in here cost 2-3x an int behind a lock).
        if type(delta) is not int:
            check_counter_value(delta)
        with self._lock:
            self._value += delta
            return self._value


class ThreadQueue(DequeStorage, BlockingQueue[T]):
    """A FIFO queue for threads: ``queue.Queue`` with Python 3.13's
    ``shutdown()`` on every Python. Any thread may call any method;
    ``put``/``get``/``join`` block the calling thread only."""

    def __init__(self, maxsize: float = 0) -> None:
        self.maxsize = check_maxsize(maxsize)
        self._init_storage()
        self._init_sync(threading.Lock(), threading.Condition)
        self._not_empty = self._conditions[NOT_EMPTY]
        self._not_full = self._conditions[NOT_FULL]

    # put and get: the common case -- room, or an item, now; no timeout to
    # check -- in line, under the mutex; the rest through the general
    # algorithm (QueueCore's steps), still under the same hold. The storage
    # hooks (_put, _get) are still the ones called.
    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        with self._mutex:
            if (
                timeout is None
                and not self._is_shutdown
                and not 0 < self.maxsize <= len(self._items)
            ):
                self._put(item)
                self._unfinished += 1
                self._not_empty.notify()
                return
            self._drive_locked(self._put_steps(item, block, timeout))

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        with self._mutex:
            if timeout is None and self._items:
                item: T = self._get()
                self._not_full.notify()
                return item
            return self._drive_locked(self._get_steps(block, timeout))  # type: ignore[no-any-return]


class ThreadsRuntime(Runtime[Lock, Queue[Any]]):
    """Tasks are threads of this process; primitives live in its memory."""

    name = "threads"
    style = "blocking"

    def lock(self) -> Lock:
        """``threading.Lock()``: any thread may release it."""
        return threading.Lock()

    def counter(self, initial: int = 0) -> ThreadCounter:
        return ThreadCounter(initial)

    def queue(self, maxsize: float = 0) -> ThreadQueue[Any]:
        return ThreadQueue(maxsize)

    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]:
        outcomes = [Outcome() for _ in tasks]

        def call(index: int, t: Task) -> None:
            try:
                outcomes[index].value = check_result(t.name, t.call())
            except BaseException as exc:  # reported to the caller of run()
                outcomes[index] = Outcome.failure(exc)

        # Daemon threads: a run that times out must not keep the interpreter
        # alive; threads cannot be stopped from outside, only abandoned.
        threads = [
            threading.Thread(target=call, args=(i, t), name=t.name, daemon=True)
            for i, t in enumerate(tasks)
        ]
        for thread in threads:
            thread.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        alive = [t.name for t, thread in zip(tasks, threads, strict=True) if thread.is_alive()]
        if alive:
            raise overdue(timeout, alive)
        return collect([t.name for t in tasks], outcomes)
