"""The lesson's first experiment: tasks updating one shared counter.

Half the tasks add 1, ``n`` times; the other half subtract 1, ``n + 1``
times; the counter starts at 10. With two tasks it must end at 9, as in
the lesson. Task *i* (counting from 0) adds when *i* is even, so with an
odd number of tasks there is one more adder than subtracter (3 tasks:
``10 + 2n - (n + 1)``).

The task code comes in the three styles a runtime may ask for, side by
side, written the way the lesson writes it. Without a lock each update is
a read followed by a write (``counter.value += delta``), and another task
may update the counter in between: that update is then overwritten, lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import critsec

__all__ = [
    "INITIAL",
    "LESSON_ITERATIONS",
    "CounterResult",
    "counter_tasks",
    "run_counter",
    "work_async",
    "work_blocking",
    "work_generator",
]

#: The counter's starting value in the lesson.
INITIAL = 10
#: Iterations per task in the lesson (the subtracting task does one more).
LESSON_ITERATIONS = 1_000_000


# -- the task code, one function per style -----------------------------------


def work_blocking(lock: Any, counter: Any, n: int, delta: int) -> None:
    """Threads and processes: add ``delta`` to ``counter``, ``n`` times.

    ``lock`` is ``None`` for the unprotected version. The update is a read
    then a write; the OS may switch tasks between the two.
    """
    for _ in range(n):
        if lock is None:
            counter.value += delta
        else:
            with lock:
                counter.value += delta


def work_generator(lock: Any, counter: Any, n: int, delta: int) -> Generator[Any, Any, None]:
    """Coroutines: the same update, with a switch (``yield``) between its
    read and its write.

    Coroutines only switch where they ``yield``, so an update with no
    ``yield`` inside cannot lose anything (see ``demo``). This one puts the
    ``yield`` *inside* the critical section, as real code does when it
    waits for I/O mid-update. Without a lock, every task reads, then all
    the others read the same value before anyone writes. With the lock
    held across the ``yield``, the others wait at ``yield from lock``
    instead, and nothing is lost.
    """
    for _ in range(n):
        if lock is None:
            value = counter.value
            yield  # another task may run here and update the counter ...
            counter.value = value + delta  # ... and this write erases its update
        else:
            with (yield from lock):
                value = counter.value
                yield  # others may run, but none can enter this section
                counter.value = value + delta


async def work_async(lock: Any, counter: Any, n: int, delta: int) -> None:
    """asyncio: as :func:`work_generator`, with ``await asyncio.sleep(0)``
    as the switch inside the critical section."""
    for _ in range(n):
        if lock is None:
            value = counter.value
            await asyncio.sleep(0)  # another task may update the counter here
            counter.value = value + delta
        else:
            async with lock:
                value = counter.value
                await asyncio.sleep(0)
                counter.value = value + delta


_WORKERS: dict[str, Callable[..., Any]] = {
    "blocking": work_blocking,
    "generator": work_generator,
    "async": work_async,
}


# -- running and measuring -----------------------------------------------------


@dataclass(frozen=True)
class CounterResult:
    """One run of the counter experiment, as measured.

    ``lost_updates`` is ``|expected - observed|``: the *net* number of
    updates lost. A lost increment and a lost decrement cancel out, so it
    is a lower bound on the updates that were really overwritten.
    ``seconds`` is the wall time of the whole run, task start-up included
    (processes take tens of milliseconds to start).
    """

    runtime: str
    lock: bool
    tasks: int
    iterations: int
    initial: int
    expected: int
    observed: int
    operations: int
    seconds: float
    trial: int = 1

    @property
    def lost_updates(self) -> int:
        return abs(self.expected - self.observed)

    @property
    def exact(self) -> bool:
        return self.observed == self.expected

    @property
    def ns_per_op(self) -> float:
        return self.seconds * 1e9 / self.operations

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (the ``critsec counter --json`` record)."""
        return {
            "runtime": self.runtime,
            "lock": self.lock,
            "tasks": self.tasks,
            "iterations": self.iterations,
            "trial": self.trial,
            "initial": self.initial,
            "expected": self.expected,
            "observed": self.observed,
            "lost_updates": self.lost_updates,
            "operations": self.operations,
            "seconds": self.seconds,
            "ns_per_op": self.ns_per_op,
        }


_VERB = {1: "add", -1: "subtract"}


def counter_tasks(tasks: int, iterations: int) -> list[tuple[int, int]]:
    """``(n, delta)`` for each task: even-numbered tasks add 1 ``iterations``
    times, odd-numbered ones subtract 1 ``iterations + 1`` times."""
    return [(iterations, 1) if i % 2 == 0 else (iterations + 1, -1) for i in range(tasks)]


def run_counter(
    runtime: critsec.Runtime[Any, Any] | str,
    *,
    lock: bool = True,
    tasks: int = 2,
    iterations: int = LESSON_ITERATIONS,
    initial: int = INITIAL,
    worker: Callable[..., Any] | None = None,
    trial: int = 1,
) -> CounterResult:
    """Run the counter experiment on ``runtime`` and measure it.

    Blocks the caller until every task has finished. ``worker`` is the task
    function, called as ``worker(lock_or_None, counter, n, delta)``; by
    default the one for the runtime's style. Raises
    :class:`~critsec.TaskError` if a task failed; never judges the outcome
    (losing updates without a lock is what the experiment shows).
    """
    if tasks < 1 or iterations < 1:
        raise ValueError(f"tasks and iterations must be >= 1, got {tasks} and {iterations}")
    rt = critsec.runtime(runtime) if isinstance(runtime, str) else runtime
    fn = worker if worker is not None else _WORKERS[rt.style]
    shared_lock = rt.lock() if lock else None
    counter = rt.counter(initial)
    plan = counter_tasks(tasks, iterations)
    jobs = [
        critsec.task(fn, shared_lock, counter, n, delta).named(f"{_VERB[delta]}-{i}")
        for i, (n, delta) in enumerate(plan)
    ]
    start = time.perf_counter()
    rt.run(*jobs)
    seconds = time.perf_counter() - start
    return CounterResult(
        runtime=rt.name,
        lock=lock,
        tasks=tasks,
        iterations=iterations,
        initial=initial,
        expected=initial + sum(n * delta for n, delta in plan),
        observed=counter.value,
        operations=sum(n for n, _ in plan),
        seconds=seconds,
        trial=trial,
    )
