"""``critsec bench``: each runtime's primitives next to their standard-library
peer, doing the same work in the same run.

A *row* pairs critsec with an *anchor* (``multiprocessing.Queue`` --
``mp.Queue`` in the rows -- ``asyncio.Lock``, a bare round-robin loop, ...)
on one workload from :mod:`._work`. Each row runs in a fresh process
(started with ``spawn``, so rows do not inherit each other's memory, and
its peak RSS is the row's own); there the two contenders run in interleaved
repeats -- critsec, anchor, critsec, anchor, ... -- so a change in the
machine's load hits both alike, and the row reports each one's median and
the ratio critsec / anchor (below 1: critsec is faster). Every run's result
is checked. A row may have a target ratio, from the performance issue; the
sweep rows (1, 2, 4, 8 tasks) show how a runtime scales and have none.
"""

from __future__ import annotations

import fnmatch
import functools
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from . import _work as work

__all__ = [
    "MEMORY",
    "ROWS",
    "BenchRow",
    "MemoryRow",
    "Row",
    "run_bench",
    "run_memory",
    "select_memory",
    "select_rows",
]


@dataclass(frozen=True)
class Row:
    """One comparison: its name (``runtime what``), the anchor, the target
    ratio (None: no target), the sizes (full, ``--quick``) and ``make``,
    which turns a size into the two contenders (each runs once, returns
    seconds)."""

    name: str
    anchor: str
    target: float | None
    n: int
    quick_n: int
    make: Callable[[int], tuple[Callable[[], float], Callable[[], float]] | None]
    unit: str = "op"
    #: Why ``make`` may return None (a peer that is not installed).
    needs: str = ""


@dataclass(frozen=True)
class BenchRow:
    """A row's result: medians in seconds, the ratio, peak RSS (MiB) of the
    row's process and its children. ``skipped``: why it did not run."""

    name: str
    anchor: str
    target: float | None
    n: int
    unit: str
    critsec: float = 0.0
    baseline: float = 0.0
    repeats: int = 0
    peak_rss_mib: float = 0.0
    skipped: str = ""

    @property
    def ratio(self) -> float:
        return self.critsec / self.baseline if self.baseline else float("nan")

    @property
    def met(self) -> bool | None:
        return None if self.target is None or self.skipped else self.ratio <= self.target

    def per_op_us(self, seconds: float) -> float:
        return seconds / self.n * 1e6

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(ratio=None if self.skipped else round(self.ratio, 4), met=self.met)
        return record


# -- the rows -------------------------------------------------------------------------------


def _critsec(name: str, **options: Any) -> Any:
    import critsec

    return critsec.runtime(name, **options)


def _processes_queue(pairs: int, size: int, batch: int, n: int) -> tuple[Any, Any]:
    rt = _critsec("processes")
    context = multiprocessing.get_context("fork")
    depth = 10 * max(1, batch)
    return (
        lambda: work.queue_run(work.on_processes, rt.queue(depth), n, pairs, size, batch),
        lambda: work.queue_run(work.on_processes, context.Queue(10), n, pairs, size),
    )


def _faster_fifo(n: int) -> tuple[Any, Any] | None:
    try:
        import faster_fifo  # type: ignore[import-not-found]
    except ImportError:
        return None
    rt = _critsec("processes")
    return (
        lambda: work.queue_run(work.on_processes, rt.queue(10), n, 1),
        lambda: work.queue_run(work.on_processes, faster_fifo.Queue(), n, 1),
    )


def _updates(
    run_on: Callable[..., Any],
    ours: tuple[Any, ...],
    theirs: tuple[Any, ...],
    work_ours: Callable[..., None],
    work_theirs: Callable[..., None],
    tasks: int,
    n: int,
) -> tuple[Any, Any]:
    """The two contenders of a counter row: ``tasks`` tasks updating the
    counter that ends each tuple of primitives."""
    return (
        lambda: work.updates_run(run_on, work_ours, ours, n, tasks),
        lambda: work.updates_run(run_on, work_theirs, theirs, n, tasks),
    )


def _processes_locked(tasks: int, n: int) -> tuple[Any, Any]:
    rt, context = _critsec("processes"), multiprocessing.get_context("fork")
    ours, theirs = (rt.lock(), rt.counter(0)), (context.Lock(), context.RawValue("q", 0))
    return _updates(
        work.on_processes, ours, theirs, work.locked_updates, work.locked_updates, tasks, n
    )


def _processes_add(n: int) -> tuple[Any, Any]:
    ours = (_critsec("processes").counter(0),)
    theirs = (multiprocessing.get_context("fork").Value("q", 0),)
    return _updates(work.on_processes, ours, theirs, work.adds, work.stdlib_locked_adds, 2, n)


def _threads_locked(tasks: int, n: int) -> tuple[Any, Any]:
    rt = _critsec("threads")
    ours, theirs = (rt.lock(), rt.counter(0)), (threading.Lock(), work.PropertyBox())
    return _updates(
        work.on_threads, ours, theirs, work.locked_updates, work.locked_updates, tasks, n
    )


def _threads_add(n: int) -> tuple[Any, Any]:
    ours, theirs = (_critsec("threads").counter(0),), (work.IntBox(),)
    return _updates(work.on_threads, ours, theirs, work.adds, work.adds, 2, n)


def _threads_queue(n: int) -> tuple[Any, Any]:
    import queue

    rt = _critsec("threads")
    return (
        lambda: work.queue_run(work.on_threads, rt.queue(10), n, 1),
        lambda: work.queue_run(work.on_threads, queue.Queue(10), n, 1),
    )


def _asyncio_lock(n: int) -> tuple[Any, Any]:
    import asyncio

    rt = _critsec("asyncio")
    return (
        lambda: work.asyncio_lock_run(rt.lock, n),
        lambda: work.asyncio_lock_run(asyncio.Lock, n),
    )


def _asyncio_queue(n: int) -> tuple[Any, Any]:
    import asyncio

    rt = _critsec("asyncio")
    return (
        lambda: work.asyncio_queue_run(functools.partial(rt.queue, 10), n),
        lambda: work.asyncio_queue_run(functools.partial(asyncio.Queue, 10), n),
    )


def _coroutines(
    lock: bool, anchor_locks: bool, n: int, same_counter: bool = False
) -> tuple[Any, Any]:
    return (
        lambda: work.coroutines_run(n, lock=lock),
        lambda: work.coroutines_run(n, lock=anchor_locks, bare=True, same_counter=same_counter),
    )


P = functools.partial
MP_QUEUE = "mp.Queue(10)"
ROWS: list[Row] = [
    Row(
        "processes queue 1P1C ints",
        MP_QUEUE,
        0.67,
        20_000,
        5_000,
        P(_processes_queue, 1, 0, 0),
        "item",
    ),
    Row(
        "processes queue 2P2C ints",
        MP_QUEUE,
        0.67,
        20_000,
        5_000,
        P(_processes_queue, 2, 0, 0),
        "item",
    ),
    Row(
        "processes queue 1P1C 1 KiB",
        MP_QUEUE,
        0.8,
        20_000,
        5_000,
        P(_processes_queue, 1, 1024, 0),
        "item",
    ),
    Row(
        "processes queue 1P1C batched 100",
        MP_QUEUE,
        None,
        100_000,
        20_000,
        P(_processes_queue, 1, 0, 100),
        "item",
    ),
    Row(
        "processes queue 1P1C faster-fifo",
        "faster_fifo.Queue()",
        1.0,
        20_000,
        5_000,
        _faster_fifo,
        "item",
        needs="faster-fifo",
    ),
    Row(
        "processes lock + counter.value",
        "mp.Lock + RawValue",
        1.2,
        100_000,
        20_000,
        P(_processes_locked, 2),
        "update",
    ),
    Row(
        "processes counter.add",
        "mp.Value + get_lock()",
        0.33,
        100_000,
        20_000,
        _processes_add,
        "update",
    ),
    # Threads that contend for a lock under the GIL take turns in bursts
    # (a switch inside a critical section makes a convoy): runs long
    # enough to hold many of them, or the medians swing by a third.
    Row("threads queue 1P1C ints", "queue.Queue(10)", 1.1, 200_000, 40_000, _threads_queue, "item"),
    Row(
        "threads counter.add",
        "threading.Lock + int",
        1.2,
        1_000_000,
        200_000,
        _threads_add,
        "update",
    ),
    Row(
        "threads lock + counter.value",
        "threading.Lock + property",
        1.1,
        1_000_000,
        200_000,
        P(_threads_locked, 2),
        "update",
    ),
    Row("asyncio lock", "asyncio.Lock", 1.3, 200_000, 50_000, _asyncio_lock, "acquire"),
    Row("asyncio queue", "asyncio.Queue(10)", 1.2, 100_000, 20_000, _asyncio_queue, "item"),
    Row(
        "coroutines no lock",
        "bare round-robin",
        2.5,
        200_000,
        50_000,
        P(_coroutines, False, False),
        "switch",
    ),
    # The same counter on both sides: the scheduler's own cost per switch.
    Row(
        "coroutines no lock, same counter",
        "bare round-robin + critsec counter",
        None,
        200_000,
        50_000,
        P(_coroutines, False, False, same_counter=True),
        "switch",
    ),
    Row(
        "coroutines with lock",
        "bare round-robin",
        4.0,
        100_000,
        20_000,
        P(_coroutines, True, False),
        "update",
    ),
    # The same work on both sides: how far the lock row is from the floor.
    Row(
        "coroutines with lock, both locking",
        "bare round-robin + least lock",
        None,
        100_000,
        20_000,
        P(_coroutines, True, True),
        "update",
    ),
]
ROWS += [
    Row(f"{rt} sweep {k} tasks", anchor, None, n, quick_n, P(make, k), "update")
    for rt, anchor, make, n, quick_n in (
        ("threads", "threading.Lock + property", _threads_locked, 1_000_000, 100_000),
        ("processes", "mp.Lock + RawValue", _processes_locked, 80_000, 16_000),
    )
    for k in (1, 2, 4, 8)
]


#: The memory rows: a pipeline of 10**6 items (10**5 with --quick) on each
#: runtime, and the same with 100 times fewer, each in a process of its own.
#: The redis runtime moves its items with put_many/get_many (100 at a time):
#: one at a time, 10**6 round trips would take minutes.
MEMORY = {f"memory {rt} pipeline": (rt, 100 if rt == "redis" else 0) for rt in (
    "threads", "processes", "coroutines", "asyncio", "redis"
)}  # fmt: skip


def _matches(name: str, patterns: list[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatch(name, f"*{p}*") for p in patterns)


def select_rows(patterns: list[str] | None) -> list[Row]:
    """The rows whose name matches any of ``patterns`` (shell-style, ``*``
    implied at both ends: ``asyncio`` matches ``asyncio lock``); all if none."""
    return [row for row in ROWS if _matches(row.name, patterns)]


def select_memory(patterns: list[str] | None) -> list[str]:
    """The memory rows ``patterns`` select (all if none)."""
    return [name for name in MEMORY if _matches(name, patterns)]


# -- running ------------------------------------------------------------------------------------


def _measure(name: str, quick: bool, repeats: int) -> BenchRow:
    """In the row's own process: the row's contenders, interleaved."""
    row = next(row for row in ROWS if row.name == name)
    n = row.quick_n if quick else row.n
    made = row.make(n)
    result = BenchRow(row.name, row.anchor, row.target, n, row.unit)
    if made is None:
        return _replace(result, skipped=f"{row.needs} is not installed")
    ours, theirs = made
    ours(), theirs()  # warm up: imports, first allocations, caches
    mine, baseline = [], []
    for _ in range(repeats):
        mine.append(ours())
        baseline.append(theirs())
    peak = max(_own_peak_kib(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return _replace(
        result,
        critsec=statistics.median(mine),
        baseline=statistics.median(baseline),
        repeats=repeats,
        peak_rss_mib=peak / 1024,  # Linux: KiB
    )


def _own_peak_kib() -> int:
    """This process's peak RSS, KiB. Not ``ru_maxrss``: Linux carries it
    over ``exec``, so a process started by ``spawn`` would report its
    parent's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _replace(row: BenchRow, **changes: Any) -> BenchRow:
    return BenchRow(**{**asdict(row), **changes})


def _row_process(name: str, quick: bool, repeats: int, sender: Any) -> None:
    try:
        sender.send(("ok", _measure(name, quick, repeats)))
    except BaseException as error:  # sent back whole: the parent reports it
        sender.send(("failed", f"{type(error).__name__}: {error}"))


class BenchFailed(RuntimeError):
    """A row whose work went wrong (a wrong result, a task that crashed)."""


def _run_row(name: str, quick: bool, repeats: int) -> BenchRow:
    status, payload = _in_own_process(_row_process, name, quick, repeats)
    if status != "ok":
        raise BenchFailed(f"{name}: {payload}")
    return payload  # type: ignore[no-any-return]


def run_bench(
    rows: list[Row],
    quick: bool = False,
    repeats: int | None = None,
    track: Callable[[str], None] = lambda description: None,
) -> Iterator[BenchRow]:
    """Each row's result, as it is measured."""
    repeats = repeats or (3 if quick else 7)
    for row in rows:
        track(row.name)
        yield _run_row(row.name, quick, repeats)


@dataclass(frozen=True)
class MemoryRow:
    """Peak RSS (MiB) of a long pipeline and of one 100 times shorter:
    flat when the queue is bounded and nothing else grows."""

    name: str
    items: int
    peak_mib: float = 0.0
    fewer_items: int = 0
    fewer_peak_mib: float = 0.0
    seconds: float = 0.0
    skipped: str = ""

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.fewer_peak_mib

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "growth_mib": round(self.growth_mib, 2)}


def _memory_process(runtime: str, n: int, batch: int, sender: Any) -> None:
    try:
        seconds = work.long_pipeline(runtime, n, batch=batch)
        peak = max(_own_peak_kib(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sender.send(("ok", (seconds, peak / 1024)))
    except ImportError as error:  # an extra that is not installed
        sender.send(("skipped", str(error)))
    except BaseException as error:
        sender.send(("failed", f"{type(error).__name__}: {error}"))


def _in_own_process(target: Callable[..., None], *args: Any) -> tuple[str, Any]:
    """Run ``target(*args, sender)`` in a spawned process; what it sent."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, sender))
    process.start()
    sender.close()
    try:
        reply: tuple[str, Any] = receiver.recv()
    except EOFError:
        reply = ("failed", "its process died")
    finally:
        process.join()
    return reply


def run_memory(
    names: list[str], quick: bool = False, track: Callable[[str], None] = lambda d: None
) -> Iterator[MemoryRow]:
    """Each memory row, as it is measured."""
    big = 100_000 if quick else 1_000_000
    for name in names:
        runtime, batch = MEMORY[name]
        measured = []
        for n in (big // 100, big):
            track(f"{name}, {n:,} items")
            status, payload = _in_own_process(_memory_process, runtime, n, batch)
            if status == "skipped":
                yield MemoryRow(name, big, skipped=payload)
                break
            if status != "ok":
                raise BenchFailed(f"{name}: {payload}")
            measured.append(payload)
        else:
            (_, few), (seconds, peak) = measured
            yield MemoryRow(name, big, peak, big // 100, few, seconds)


def machine() -> dict[str, Any]:
    """Where the numbers come from."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "executable": sys.executable,
    }
