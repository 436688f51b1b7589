"""The lesson's second experiment: producers and consumers sharing a
bounded queue.

``items`` is the total: items ``0 .. items-1`` are dealt out round-robin,
producer *p* of *P* putting items ``p, p+P, p+2P, ...``. Consumers block
in ``get`` -- no polling of ``full()``/``empty()`` as in the lesson, no
sentinels. The last producer to finish (``producers_left.add(-1) == 0``)
shuts the queue down; consumers drain what is left and stop on
:class:`~critsec.ShutDown`. Every consumer returns what it took, so the
run can check that each item arrived exactly once.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import critsec

__all__ = [
    "PipelineResult",
    "consume_async",
    "consume_blocking",
    "consume_generator",
    "produce_async",
    "produce_blocking",
    "produce_generator",
    "run_pipeline",
]


# -- the task code, one pair per style -----------------------------------------
# A producer returns the largest queue size it saw right after a put (the
# moment the queue is fullest); a consumer returns the items it took.


def produce_blocking(q: Any, producers_left: Any, items: range) -> int:
    """Threads and processes: put ``items``; the last producer shuts ``q`` down."""
    high = 0
    try:
        for item in items:
            q.put(item)  # waits while the queue is full
            high = max(high, q.qsize())
    finally:
        # Even if this producer failed, the consumers must be told to stop.
        if producers_left.add(-1) == 0:
            q.shutdown()
    return high


def consume_blocking(q: Any) -> list[int]:
    """Threads and processes: take items until the queue is shut down and empty."""
    taken: list[int] = []
    while True:
        try:
            item = q.get()  # waits while the queue is empty
        except critsec.ShutDown:
            return taken
        taken.append(item)


def produce_generator(q: Any, producers_left: Any, items: range) -> Generator[Any, Any, int]:
    """Coroutines: as :func:`produce_blocking`; waiting is ``yield from``."""
    high = 0
    try:
        for item in items:
            yield from q.put(item)
            high = max(high, q.qsize())
    finally:
        if producers_left.add(-1) == 0:
            q.shutdown()
    return high


def consume_generator(q: Any) -> Generator[Any, Any, list[int]]:
    """Coroutines: as :func:`consume_blocking`; waiting is ``yield from``."""
    taken: list[int] = []
    while True:
        try:
            item = yield from q.get()
        except critsec.ShutDown:
            return taken
        taken.append(item)


async def produce_async(q: Any, producers_left: Any, items: range) -> int:
    """asyncio: as :func:`produce_blocking`; waiting is ``await``."""
    high = 0
    try:
        for item in items:
            await q.put(item)
            high = max(high, q.qsize())
    finally:
        if producers_left.add(-1) == 0:
            q.shutdown()
    return high


async def consume_async(q: Any) -> list[int]:
    """asyncio: as :func:`consume_blocking`; waiting is ``await``."""
    taken: list[int] = []
    while True:
        try:
            item = await q.get()
        except critsec.ShutDown:
            return taken
        taken.append(item)


_TASKS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "blocking": (produce_blocking, consume_blocking),
    "generator": (produce_generator, consume_generator),
    "async": (produce_async, consume_async),
}


# -- running and checking ----------------------------------------------------------


@dataclass(frozen=True)
class PipelineResult:
    """One pipeline run, checked.

    ``produced`` counts items put, ``consumed`` items taken; ``lost`` the
    item numbers never taken, ``duplicated`` the extra copies taken of any
    item. ``max_qsize`` is the largest ``qsize()`` a producer saw right
    after a put; it must never exceed ``maxsize`` (when ``maxsize > 0``).
    ``seconds`` is the wall time of the run, task start-up included.
    """

    runtime: str
    producers: int
    consumers: int
    items: int
    maxsize: int
    produced: int
    consumed: int
    lost: int
    duplicated: int
    max_qsize: int
    seconds: float

    @property
    def items_per_s(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else float("inf")

    @property
    def bounded(self) -> bool:
        """The queue never held more than ``maxsize`` items (0: unbounded)."""
        return self.maxsize == 0 or self.max_qsize <= self.maxsize

    @property
    def ok(self) -> bool:
        """Every item consumed exactly once, and the bound respected."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.produced == self.consumed == self.items
            and self.bounded
        )

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (the ``critsec pipeline --json`` record)."""
        return {
            "runtime": self.runtime,
            "producers": self.producers,
            "consumers": self.consumers,
            "items": self.items,
            "maxsize": self.maxsize,
            "produced": self.produced,
            "consumed": self.consumed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "max_qsize": self.max_qsize,
            "bounded": self.bounded,
            "ok": self.ok,
            "seconds": self.seconds,
            "items_per_s": self.items_per_s,
        }


def run_pipeline(
    runtime: critsec.Runtime[Any, Any] | str,
    *,
    producers: int = 2,
    consumers: int = 2,
    items: int = 10_000,
    maxsize: int = 10,
) -> PipelineResult:
    """Run producers and consumers on ``runtime`` and check what arrived.

    Blocks the caller until every task has finished. Raises
    :class:`~critsec.TaskError` if a task failed; otherwise returns the
    result, whose ``ok`` says whether every item arrived exactly once.
    """
    if producers < 1 or consumers < 1 or items < 1 or maxsize < 0:
        raise ValueError(
            "producers, consumers and items must be >= 1 and maxsize >= 0, got "
            f"{producers}, {consumers}, {items} and {maxsize}"
        )
    rt = critsec.runtime(runtime) if isinstance(runtime, str) else runtime
    produce, consume = _TASKS[rt.style]
    q = rt.queue(maxsize)
    producers_left = rt.counter(producers)
    jobs = [
        critsec.task(produce, q, producers_left, range(p, items, producers)).named(f"producer-{p}")
        for p in range(producers)
    ] + [critsec.task(consume, q).named(f"consumer-{c}") for c in range(consumers)]
    start = time.perf_counter()
    values = rt.run(*jobs)
    seconds = time.perf_counter() - start
    highs, takens = values[:producers], values[producers:]
    counts = collections.Counter(item for taken in takens for item in taken)
    return PipelineResult(
        runtime=rt.name,
        producers=producers,
        consumers=consumers,
        items=items,
        maxsize=maxsize,
        # A producer returns only after every put of its range succeeded
        # (a failed put raises, and run() raises TaskError).
        produced=items,
        consumed=sum(counts.values()),
        lost=sum(1 for item in range(items) if item not in counts),
        duplicated=sum(n - 1 for n in counts.values()),
        max_qsize=max(highs),
        seconds=seconds,
    )
