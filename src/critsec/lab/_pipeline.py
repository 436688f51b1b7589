"""The lesson's second experiment: producers and consumers sharing a
bounded queue.

``items`` is the total: items ``0 .. items-1`` are dealt out round-robin,
producer *p* of *P* putting items ``p, p+P, p+2P, ...``. Consumers block
in ``get`` -- no polling of ``full()``/``empty()`` as in the lesson, no
sentinels. The last producer to finish (``producers_left.add(-1) == 0``)
shuts the queue down; consumers drain what is left and stop on
:class:`~critsec.ShutDown`. Every consumer returns what it took, so the
run can check that each item arrived exactly once.

On a redis runtime a pipeline can be *named*: it then lives on the server,
and its two sides can run in different programs, on different machines
(``critsec pipeline --role producer|consumer --name NAME``); see
:class:`_NamedRun`.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import critsec

from ._sampling import SamplerThread, sample_blocking

if TYPE_CHECKING:
    from critsec.runtimes._redis import RedisCounter, RedisQueue, RedisRuntime

__all__ = [
    "ROLES",
    "PipelineResult",
    "consume_async",
    "consume_blocking",
    "consume_generator",
    "produce_async",
    "produce_blocking",
    "produce_generator",
    "run_pipeline",
]

#: Which tasks a run starts: all of them, or one side of a named pipeline.
ROLES = ("both", "producer", "consumer")


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

    One side of a named pipeline (``role``, ``name``: see :class:`_NamedRun`)
    reports what that side sees, and None for the rest. The producer side:
    what it put and how full the queue got (``consumed``, ``lost`` and
    ``duplicated`` are None). The consumer side: what it took, checked
    against the item count the producer side recorded, which is its
    ``items`` and ``produced`` (``maxsize`` and ``max_qsize`` are None).
    ``producers`` and ``consumers`` count the tasks this side ran.
    """

    runtime: str
    producers: int
    consumers: int
    items: int
    maxsize: int | None
    produced: int
    consumed: int | None
    lost: int | None
    duplicated: int | None
    max_qsize: int | None
    seconds: float
    role: str = "both"
    name: str | None = None
    #: With ``sample=True`` only: the queue's length over the run, as
    #: (seconds, qsize) pairs (see ``_sampling``), and the items each
    #: consumer took.
    qsize_samples: tuple[tuple[float, int], ...] | None = None
    taken_per_consumer: tuple[int, ...] | None = None

    @property
    def items_per_s(self) -> float:
        """Items taken per second (the producer side: items put)."""
        moved = self.produced if self.consumed is None else self.consumed
        return moved / self.seconds if self.seconds > 0 else float("inf")

    @property
    def bounded(self) -> bool:
        """The queue never held more than ``maxsize`` items (0: unbounded),
        as far as this side saw."""
        return self.max_qsize is None or not self.maxsize or self.max_qsize <= self.maxsize

    @property
    def ok(self) -> bool:
        """Every item consumed exactly once, and the bound respected: as far
        as this side can tell. A consumer side that found no item count
        recorded (0) fails: it cannot tell."""
        exactly_once = self.consumed is None or (
            self.lost == 0 and self.duplicated == 0 and self.consumed == self.items
        )
        return self.items > 0 and self.produced == self.items and exactly_once and self.bounded

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (the ``critsec pipeline --json`` record);
        a sampled run adds ``qsize_samples``, ``taken_per_consumer`` and
        ``items_per_s_per_consumer`` (items taken / the run's seconds)."""
        record: dict[str, Any] = {
            "runtime": self.runtime,
            "role": self.role,
            "name": self.name,
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
        if self.qsize_samples is not None:
            record["qsize_samples"] = [list(point) for point in self.qsize_samples]
        if self.taken_per_consumer is not None:
            record["taken_per_consumer"] = list(self.taken_per_consumer)
            record["items_per_s_per_consumer"] = [
                taken / self.seconds if self.seconds > 0 else float("inf")
                for taken in self.taken_per_consumer
            ]
        return record


def run_pipeline(
    runtime: critsec.Runtime[Any, Any] | str,
    *,
    producers: int = 2,
    consumers: int = 2,
    items: int = 10_000,
    maxsize: int = 10,
    role: str = "both",
    name: str | None = None,
    sample: bool = False,
) -> PipelineResult:
    """Run producers and consumers on ``runtime`` and check what arrived.

    Blocks the caller until every task has finished. Raises
    :class:`~critsec.TaskError` if a task failed; otherwise returns the
    result, whose ``ok`` says whether every item arrived exactly once.

    ``name`` (redis runtimes only) puts the pipeline on the server under
    that name, and ``role`` (one of :data:`ROLES`) then runs one side of it
    -- ``"producer"`` the producers, ``"consumer"`` the consumers, which
    take the item count from the producer side -- so that the two sides can
    run in two programs, on two machines, started in either order (see
    :class:`_NamedRun`).

    ``sample`` (``role="both"`` only) also records the queue's length over
    the run and what each consumer took (``critsec pipeline --plot``).
    """
    if producers < 1 or consumers < 1 or items < 1 or maxsize < 0:
        raise ValueError(
            "producers, consumers and items must be >= 1 and maxsize >= 0, got "
            f"{producers}, {consumers}, {items} and {maxsize}"
        )
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(map(repr, ROLES))}, got {role!r}")
    if role != "both" and name is None:
        raise ValueError(f"the {role} side of a pipeline needs the pipeline's name")
    if sample and role != "both":
        raise ValueError("only a whole pipeline (role='both') is sampled")
    rt = critsec.runtime(runtime) if isinstance(runtime, str) else runtime
    produce, consume = _TASKS[rt.style]
    # The tasks this run starts: one side of a named pipeline starts its own only.
    producing = 0 if role == "consumer" else producers
    consuming = 0 if role == "producer" else consumers
    named = None if name is None else _NamedRun(rt, name)
    producers_left: critsec.Counter | None
    if named is None:
        q, producers_left = rt.queue(maxsize), rt.counter(producers)
    elif producing:
        q, producers_left = named.start_producing(items, maxsize, producers)
    else:
        q, producers_left = named.start_consuming(), None
    jobs = [
        critsec.task(produce, q, producers_left, range(p, items, producers)).named(f"producer-{p}")
        for p in range(producing)
    ] + [critsec.task(consume, q).named(f"consumer-{c}") for c in range(consuming)]
    # Tasks in processes fork: a thread here then could deadlock them (see _sampling).
    sampler = None
    if sample and rt.style == "blocking" and rt.name != "threads":
        jobs.append(critsec.task(sample_blocking, q, producers_left).named("qsize-sampler"))
    elif sample:
        sampler = SamplerThread(q)
        sampler.start()
    start = time.perf_counter()
    try:
        values = rt.run(*jobs)
        seconds = time.perf_counter() - start
    finally:
        points = None if sampler is None else sampler.stop()
    if sample and sampler is None:
        points = values.pop()
    highs, takens = values[:producing], values[producing:]
    if named is not None and consuming:
        items = named.end_consuming()  # the producer side's word: here, or in another program
    consumed = lost = duplicated = None
    if consuming:
        counts = collections.Counter(item for taken in takens for item in taken)
        consumed = sum(counts.values())
        lost = sum(1 for item in range(items) if item not in counts)
        duplicated = sum(n - 1 for n in counts.values())
    return PipelineResult(
        runtime=rt.name,
        producers=producing,
        consumers=consuming,
        items=items,
        maxsize=maxsize if producing else None,
        # A producer returns only after every put of its range succeeded
        # (a failed put raises, and run() raises TaskError).
        produced=items,
        consumed=consumed,
        lost=lost,
        duplicated=duplicated,
        max_qsize=max(highs) if highs else None,
        seconds=seconds,
        role=role,
        name=name,
        qsize_samples=None if points is None else tuple((t, n) for t, n in points),
        taken_per_consumer=tuple(len(taken) for taken in takens) if sample else None,
    )


# -- one pipeline, two programs -----------------------------------------------------


class _NamedRun:
    """A pipeline named ``name`` on a redis runtime's server. Its producer
    side and its consumer side may run in two programs, on two machines,
    started in either order, and again and again under the same name.

    On the server: the queue ``name``; the counter ``name.items``, the item
    count of the run, recorded by the producer side before its first put,
    so that it is there whenever the consumer side reads it; and
    ``name.producers``, the producers still putting (the last one shuts the
    queue down, as in every pipeline).

    * The producer side starts a run (:meth:`start_producing`): whatever
      the name held gives way to a fresh queue. Only a producer side makes
      the queue, so a queue that exists then is a previous run's --
      finished, abandoned half-way, or never consumed.
    * The consumer side never makes the queue: its getters wait on the
      name until a producer side makes it, so the two sides meet at the
      same queue whichever starts first (:meth:`start_consuming`). It takes
      what the run the name holds has to give -- unless that run is
      finished (shut down and drained: a previous one), which it clears, to
      wait for the next. Done (:meth:`end_consuming`), it reads the item
      count and clears the run, so nothing is left on the server.

    One producer side and one consumer side at a time per name.
    """

    def __init__(self, rt: critsec.Runtime[Any, Any], name: str) -> None:
        # Imported here: redis-py is an extra, and spawned task processes
        # import this module.
        from critsec.runtimes._redis import RedisRuntime

        if not isinstance(rt, RedisRuntime):
            raise ValueError(
                f"a named pipeline lives on a redis server: it needs a redis runtime, "
                f"not {rt.name!r}"
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"a pipeline's name is a non-empty str, got {name!r}")
        self._rt: RedisRuntime = rt
        self.name = name
        # Attached, never made here (create=False): see the class's docs.
        self.queue: RedisQueue[Any] = rt.queue(name, create=False)
        self.items: RedisCounter = rt.counter(f"{name}.items", create=False)
        self.producers_left: RedisCounter = rt.counter(f"{name}.producers", create=False)

    def start_producing(
        self, items: int, maxsize: int, producers: int
    ) -> tuple[RedisQueue[Any], RedisCounter]:
        """A fresh run: the name's previous one cleared, the item count
        recorded, then the queue made."""
        self._clear(finished_only=False)
        self.items.value = items
        self.producers_left.value = producers
        return self._rt.queue(self.name, maxsize), self.producers_left

    def start_consuming(self) -> RedisQueue[Any]:
        """The queue to take from: the name's current run, or the next one."""
        self._clear(finished_only=True)
        return self.queue

    def end_consuming(self) -> int:
        """The item count the producer side recorded; the run, finished, is
        cleared."""
        count = self.items.value
        self._clear(finished_only=True)
        return count

    def _clear(self, *, finished_only: bool) -> None:
        """Remove the run from the server if its queue exists -- and, with
        ``finished_only``, is shut down and drained (one script: a run
        that goes on is never removed) -- then its counters."""
        if self.queue.delete(finished_only=finished_only):
            self.items.delete()
            self.producers_left.delete()
