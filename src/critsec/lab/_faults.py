"""When a task dies: the lab's fault experiments, on real processes.

Only a process can die alone -- a thread or a coroutine shares its process
with the others -- so these run on the processes runtime. They do not use
``run()``, which stops every task once one has failed: here a supervisor
(this process) starts the tasks, kills some with SIGKILL, replaces a
killed consumer with a new one, and checks what the survivors see.

* :func:`holder_dies`: a task is killed holding the lock, inside the
  critical section, while another waits for it. critsec's lock is handed
  to the waiter, who is told (``owner_died``); ``multiprocessing.Lock`` stays
  locked for good. The wait from the death to the hand-over is measured.
* :func:`counter_with_dying_holder`: the lesson's locked counter, one task
  killed inside its critical section half-way; the others go on, the first
  to take the lock next is told, and the counter is exact for the updates
  that were made.
* :func:`pipeline_with_kills`: producers and consumers through a bounded
  queue; consumers are SIGKILLed at random moments and replaced. With
  at-least-once delivery nothing is lost, and the duplicates (items a
  consumer had processed, then died before ``task_done``) are counted.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import time
from dataclasses import dataclass
from typing import Any

import critsec
from critsec.runtimes._processes import ProcessesRuntime
from critsec.runtimes._shared_memory import AT_MOST_ONCE, redeliver_from_the_dead

from ._counter import INITIAL, counter_tasks
from ._pipeline import produce_blocking

__all__ = [
    "HolderDeath",
    "HolderKilledCounter",
    "PipelineKills",
    "counter_with_dying_holder",
    "holder_dies",
    "pipeline_with_kills",
]

#: A task of these experiments that takes longer than this is stuck.
PATIENCE = 60.0


def _processes(runtime: critsec.Runtime[Any, Any] | str) -> ProcessesRuntime:
    rt = critsec.runtime(runtime) if isinstance(runtime, str) else runtime
    if not isinstance(rt, ProcessesRuntime):
        raise ValueError(
            f"killing a task needs the processes runtime, not {rt.name!r}: "
            "only a process can die alone"
        )
    return rt


def _start(rt: ProcessesRuntime, target: Any, *args: Any) -> Any:
    process = rt.context.Process(target=target, args=args)  # type: ignore[attr-defined]
    process.start()
    return process


def _join(process: Any) -> int | None:
    process.join(PATIENCE)
    if process.exitcode is None:  # stuck: the experiment reports it, and cleans up
        process.kill()
        process.join()
        return None
    code: int | None = process.exitcode
    process.close()
    return code


def _now_ns() -> int:
    # CLOCK_MONOTONIC is one clock for every process of the machine.
    return time.monotonic_ns()


# -- a holder dies inside the critical section ----------------------------------------


@dataclass(frozen=True)
class HolderDeath:
    """A lock's holder SIGKILLed while another task waits for the lock."""

    lock: str  # "critsec" or "multiprocessing"
    acquired: bool  # the waiter got the lock (within ``patience``)
    told: bool  # ... and was told that its previous owner died
    wait_ms: float | None  # from the death to the waiter holding the lock

    def to_json(self) -> dict[str, Any]:
        return {
            "lock": self.lock,
            "acquired": self.acquired,
            "told": self.told,
            "wait_ms": self.wait_ms,
        }


def _hold_and_die(lock: Any, holding: Any, waiting: Any, died_at: Any) -> None:
    lock.acquire()
    holding.set()
    waiting.wait(PATIENCE)  # the waiter is on its way into acquire()
    died_at.value = _now_ns()
    os.kill(os.getpid(), signal.SIGKILL)


def _wait_for(lock: Any, patience: float, waiting: Any, report: Any) -> None:
    waiting.set()
    got = lock.acquire(timeout=patience)
    report.send((got, bool(getattr(lock, "owner_died", False)), _now_ns()))


def holder_dies(
    runtime: critsec.Runtime[Any, Any] | str = "processes",
    *,
    lock: str = "critsec",
    patience: float = 1.0,
) -> HolderDeath:
    """Kill the holder of a lock (``"critsec"``: the runtime's;
    ``"multiprocessing"``: ``multiprocessing.Lock``) inside its critical
    section while a second process waits at most ``patience`` seconds."""
    rt = _processes(runtime)
    if lock not in ("critsec", "multiprocessing"):
        raise ValueError(f"lock must be 'critsec' or 'multiprocessing', got {lock!r}")
    shared = rt.lock() if lock == "critsec" else rt.context.Lock()
    holding, waiting = rt.context.Event(), rt.context.Event()
    died_at = rt.context.RawValue("q", 0)
    reader, writer = rt.context.Pipe(duplex=False)
    holder = _start(rt, _hold_and_die, shared, holding, waiting, died_at)
    if not holding.wait(PATIENCE):
        raise RuntimeError("the holder never took the lock")
    waiter = _start(rt, _wait_for, shared, patience, waiting, writer)
    _join(holder)
    got, told, at = reader.recv() if reader.poll(PATIENCE + patience) else (False, False, 0)
    _join(waiter)
    wait_ms = (at - died_at.value) / 1e6 if got else None
    return HolderDeath(lock, bool(got), bool(told), wait_ms)


# -- the locked counter, one task killed inside the critical section -------------------


@dataclass(frozen=True)
class HolderKilledCounter:
    """The lesson's locked counter with one task SIGKILLed inside its
    critical section at update ``killed_at``."""

    tasks: int
    iterations: int
    killed_at: int
    expected: int  # INITIAL + every update that was made
    observed: int
    told: bool  # the next owner of the lock was told that its owner died
    wait_ms: float | None  # from the death to the next owner holding the lock
    survivors_ok: bool  # every other task ended normally

    @property
    def exact(self) -> bool:
        return self.expected == self.observed

    @property
    def ok(self) -> bool:
        return self.exact and self.told and self.survivors_ok

    def to_json(self) -> dict[str, Any]:
        return {
            "runtime": "processes",
            "tasks": self.tasks,
            "iterations": self.iterations,
            "killed_at": self.killed_at,
            "expected": self.expected,
            "observed": self.observed,
            "exact": self.exact,
            "told": self.told,
            "wait_ms": self.wait_ms,
            "survivors_ok": self.survivors_ok,
            "ok": self.ok,
        }


def _locked_updates(
    lock: Any, counter: Any, made: Any, n: int, delta: int, die_at: int, times: Any
) -> None:
    """``n`` locked updates ``counter.value += delta``, each counted in
    ``made`` once written; with ``die_at`` > 0, SIGKILL itself inside the
    critical section of update ``die_at``, after the read, before the write."""
    for i in range(1, n + 1):
        with lock:
            if lock.owner_died and not times[1]:
                times[1] = _now_ns()  # the first to be told
            value = counter.value
            if i == die_at:
                times[0] = _now_ns()
                os.kill(os.getpid(), signal.SIGKILL)
            counter.value = value + delta
            made.add(delta)


def counter_with_dying_holder(
    runtime: critsec.Runtime[Any, Any] | str = "processes",
    *,
    tasks: int = 2,
    iterations: int = 10_000,
    seed: int | None = None,
) -> HolderKilledCounter:
    """The locked counter on processes; task 0 dies inside its critical
    section at a random update (from ``seed``) while the others go on."""
    rt = _processes(runtime)
    if tasks < 2 or iterations < 1:
        raise ValueError(f"needs at least 2 tasks and 1 iteration, got {tasks} and {iterations}")
    rng = random.Random(seed)
    killed_at = rng.randint(1, iterations)
    lock, counter, made = rt.lock(), rt.counter(INITIAL), rt.counter(0)
    times = rt.context.RawArray("q", 2)  # [death, first told], monotonic ns
    plan = counter_tasks(tasks, iterations)
    workers = [
        _start(rt, _locked_updates, lock, counter, made, n, delta, 0 if i else killed_at, times)
        for i, (n, delta) in enumerate(plan)
    ]
    codes = [_join(w) for w in workers]
    if not times[1]:  # the others had finished first: the next owner is this process
        with lock:
            if lock.owner_died:
                times[1] = _now_ns()
    told = bool(times[1])
    return HolderKilledCounter(
        tasks=tasks,
        iterations=iterations,
        killed_at=killed_at,
        expected=INITIAL + made.value,
        observed=counter.value,
        told=told,
        wait_ms=(times[1] - times[0]) / 1e6 if told else None,
        survivors_ok=codes[0] == -signal.SIGKILL and all(c == 0 for c in codes[1:]),
    )


# -- a pipeline whose consumers are killed ---------------------------------------------


@dataclass(frozen=True)
class PipelineKills:
    """A pipeline on processes whose consumers were SIGKILLed and replaced."""

    producers: int
    consumers: int
    items: int
    maxsize: int
    delivery: str
    killed: int
    consumed: int  # deliveries processed (an item processed twice counts twice)
    lost: int  # items never processed
    duplicated: int  # extra processings of an item
    redelivered: int  # deliveries announced as a redelivery (count > 1)
    seconds: float

    @property
    def ok(self) -> bool:
        """At-least-once: nothing lost. At-most-once: nothing lost but the
        items the killed consumers held (one each at most), no duplicate."""
        if self.delivery == AT_MOST_ONCE:
            return self.lost <= self.killed and self.duplicated == 0
        return self.lost == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "runtime": "processes",
            "producers": self.producers,
            "consumers": self.consumers,
            "items": self.items,
            "maxsize": self.maxsize,
            "delivery": self.delivery,
            "killed": self.killed,
            "consumed": self.consumed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "redelivered": self.redelivered,
            "ok": self.ok,
            "seconds": self.seconds,
        }


def _consume_noting(q: Any, seen: Any, progress: Any, redelivered: Any, work: float) -> None:
    """Take items until the queue is shut down and drained; work on each
    for ``work`` seconds (as if it waited for a disk or a server), note it
    in ``seen`` (per item), then acknowledge it."""
    while True:
        try:
            delivery = q.get_delivery()
        except critsec.ShutDown:
            return
        if work:
            time.sleep(work)
        seen[delivery.item] += 1
        if delivery.deliveries > 1:
            redelivered.add(1)
        progress.add(1)
        q.task_done()


def pipeline_with_kills(
    runtime: critsec.Runtime[Any, Any] | str = "processes",
    *,
    producers: int = 2,
    consumers: int = 2,
    items: int = 10_000,
    maxsize: int = 10,
    kills: int = 1,
    delivery: str = "at-least-once",
    seed: int | None = None,
    work: float = 0.0002,
) -> PipelineKills:
    """Run the pipeline on processes, SIGKILLing ``kills`` consumers at
    random moments (from ``seed``) and starting a new consumer for each.
    Each consumer works ``work`` seconds on each item it holds, so a kill
    usually finds it holding one."""
    rt = _processes(runtime)
    if producers < 1 or consumers < 1 or items < 1 or maxsize < 0 or kills < 0:
        raise ValueError("producers, consumers and items must be >= 1, maxsize and kills >= 0")
    rng = random.Random(seed)
    q = rt.queue(maxsize, delivery=delivery)
    producers_left = rt.counter(producers)
    seen = rt.context.RawArray("q", items)
    progress, redelivered = rt.counter(), rt.counter()
    # Kill while the work is under way: somewhere between 10% and 90% done.
    low, high = items // 10, max(items // 10, items * 9 // 10)
    moments = sorted(rng.randint(low, high) for _ in range(kills))
    start = time.perf_counter()
    makers = [
        _start(rt, produce_blocking, q, producers_left, range(p, items, producers))
        for p in range(producers)
    ]
    consumer = (_consume_noting, q, seen, progress, redelivered, work)
    takers = [_start(rt, *consumer) for _ in range(consumers)]
    killed = 0
    for moment in moments:
        while progress.value < moment and any(t.is_alive() for t in takers):
            time.sleep(0.0005)  # the supervisor's own pace; nobody waits for it
        alive = [t for t in takers if t.is_alive()]
        if not alive:
            break
        victim = rng.choice(alive)
        os.kill(victim.pid, signal.SIGKILL)
        _join(victim)
        killed += 1
        takers.remove(victim)
        redeliver_from_the_dead()  # what it held goes to the others now
        takers.append(_start(rt, *consumer))
    for process in makers + takers:
        _join(process)
    seconds = time.perf_counter() - start
    processed = seen[:]
    counts = collections.Counter(processed)
    return PipelineKills(
        producers=producers,
        consumers=consumers,
        items=items,
        maxsize=maxsize,
        delivery=delivery,
        killed=killed,
        consumed=sum(processed),
        lost=counts[0],
        duplicated=sum((n - 1) * k for n, k in counts.items() if n > 1),
        redelivered=redelivered.value,
        seconds=seconds,
    )
