"""The benchmark's workloads: the same work done with critsec's primitives
and with the standard library's, each run timed and checked.

Every function here takes the primitives to use and a size ``n`` and
returns the seconds the work took, measured from the moment every task is
ready (a barrier) to the moment the last one finished -- never the start
or the end of threads and processes, which are not what is compared. Each
run's result is checked (an exact counter, every item received exactly
once and in order where order is promised); a wrong one raises
:class:`WrongResult`, so a fast but broken primitive cannot win.

Task functions are module-level: processes are forked, and the bench runs
each row in a process started by ``spawn``, which imports them from here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any

__all__ = ["WrongResult"]


class WrongResult(AssertionError):
    """A benchmark run that did the work wrongly (a lost update, a lost or
    duplicated item)."""


def expect(what: str, got: Any, wanted: Any) -> None:
    if got != wanted:
        raise WrongResult(f"{what}: got {_short(got)}, expected {_short(wanted)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


# -- running blocking tasks: threads or forked processes, timed between barriers ---------


def _task_thread(
    barrier: Any,
    times: list[tuple[float, float]],
    i: int,
    target: Callable[..., Any],
    args: tuple[Any, ...],
    results: list[Any],
) -> None:
    barrier.wait()
    start = time.perf_counter()
    try:
        results[i] = target(*args)
    except BaseException as error:  # reported by on_threads, as a wrong result
        results[i] = error
    times[i] = (start, time.perf_counter())


def _span(times: list[tuple[float, float]]) -> float:
    """From the first task's start to the last one's end."""
    return max(end for _, end in times) - min(start for start, _ in times)


def on_threads(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> tuple[float, list[Any]]:
    """Run each ``(target, args)`` in a thread, all released together;
    the seconds from the first start to the last end, and what each returned."""
    barrier = threading.Barrier(len(jobs))
    times = [(0.0, 0.0)] * len(jobs)
    results: list[Any] = [None] * len(jobs)
    threads = [
        threading.Thread(target=_task_thread, args=(barrier, times, i, target, args, results))
        for i, (target, args) in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise WrongResult(f"a task failed: {type(result).__name__}: {result}")
    return _span(times), results


def _task_process(
    barrier: Any, sender: Any, target: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    barrier.wait()
    start = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in every process
    try:
        result = target(*args)
    except BaseException as error:  # reported by the parent, as a wrong result
        sender.send((None, f"{type(error).__name__}: {error}"))
        return
    sender.send(((start, time.perf_counter()), result))
    sender.close()


def on_processes(
    jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]],
) -> tuple[float, list[Any]]:
    """Run each ``(target, args)`` in a forked process, all released
    together; the seconds from the first start to the last end, and what
    each returned (sent back after its end was noted)."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(jobs))
    pipes = [context.Pipe(duplex=False) for _ in jobs]
    processes = [
        context.Process(target=_task_process, args=(barrier, sender, target, args), daemon=True)
        for (target, args), (_, sender) in zip(jobs, pipes, strict=True)
    ]
    for process in processes:
        process.start()
    for _, sender in pipes:
        sender.close()
    times, results = [], []
    for receiver, _ in pipes:
        span, result = receiver.recv()
        if span is None:
            raise WrongResult(f"a task failed: {result}")
        times.append(span)
        results.append(result)
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise WrongResult(f"a task process exited with {process.exitcode}")
    return _span(times), results


# -- queues -------------------------------------------------------------------------------


def produce(q: Any, items: Iterable[Any]) -> None:
    for item in items:
        q.put(item)


def consume(q: Any, n: int) -> list[Any]:
    return [q.get() for _ in range(n)]


def produce_batched(q: Any, items: list[Any], batch: int) -> None:
    for i in range(0, len(items), batch):
        q.put_many(items[i : i + batch])


def consume_batched(q: Any, n: int, batch: int) -> list[Any]:
    got: list[Any] = []
    while len(got) < n:
        got.extend(delivery.item for delivery in q.get_many(min(batch, n - len(got))))
    return got


def payload(i: int, size: int) -> Any:
    """Item ``i``: the int itself, or ``size`` bytes starting with it."""
    return i if size == 0 else i.to_bytes(8, "big") * (size // 8)


def queue_run(
    run_on: Callable[..., tuple[float, list[Any]]],
    q: Any,
    n: int,
    pairs: int,
    size: int = 0,
    batch: int = 0,
) -> float:
    """``pairs`` producers each put ``n // pairs`` items into ``q`` and
    ``pairs`` consumers take them; checked: every item exactly once, each
    producer's items in the order it put them."""
    share = n // pairs
    parts = [[payload(p * share + i, size) for i in range(share)] for p in range(pairs)]
    jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]
    if batch:
        jobs = [(produce_batched, (q, part, batch)) for part in parts]
        jobs += [(consume_batched, (q, share, batch)) for _ in range(pairs)]
    else:
        jobs = [(produce, (q, part)) for part in parts]
        jobs += [(consume, (q, share)) for _ in range(pairs)]
    seconds, results = run_on(jobs)
    check_items(parts, results[pairs:])
    return seconds


def check_items(parts: list[list[Any]], received: list[list[Any]]) -> None:
    sent = [item for part in parts for item in part]
    got = [item for items in received for item in items]
    expect("items received", sorted(got), sorted(sent))
    for part in parts:  # FIFO: each consumer sees a producer's items in order
        first = {item: i for i, item in enumerate(part)}
        for items in received:
            mine = [first[item] for item in items if item in first]
            expect("order of one producer's items", mine, sorted(mine))


# -- locked updates -----------------------------------------------------------------------


def locked_updates(lock: Any, counter: Any, n: int) -> None:
    for _ in range(n):
        with lock:
            counter.value += 1


def adds(counter: Any, n: int) -> None:
    for _ in range(n):
        counter.add(1)


def stdlib_locked_adds(value: Any, n: int) -> None:
    """``multiprocessing.Value``'s way: its own lock around a read and a write."""
    for _ in range(n):
        with value.get_lock():
            value.value += 1


class IntBox:
    """A plain shared int behind a lock: ``add`` as ``counter.add`` is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = 0

    def add(self, delta: int) -> int:
        with self.lock:
            self.value += delta
            return self.value


class PropertyBox:
    """An int behind a property, as critsec's counters are: the anchor for
    ``with lock: counter.value += 1`` on threads."""

    def __init__(self) -> None:
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, new: int) -> None:
        self._value = new


def updates_run(
    run_on: Callable[..., tuple[float, list[Any]]],
    work: Callable[..., None],
    args: tuple[Any, ...],
    n: int,
    tasks: int,
) -> float:
    """``tasks`` tasks each do ``work(*args, n // tasks)``; checked: the
    counter -- the last of ``args``, read through its ``value`` -- gained
    exactly what they added."""
    counter = args[-1]
    share = n // tasks
    before = counter.value
    seconds, _ = run_on([(work, (*args, share)) for _ in range(tasks)])
    expect("counter", counter.value - before, share * tasks)
    return seconds


# -- asyncio ------------------------------------------------------------------------------


def asyncio_lock_run(make_lock: Callable[[], Any], n: int, tasks: int = 2) -> float:
    """``tasks`` tasks each take the lock ``n // tasks`` times to add 1,
    switching inside it every other time (so waiters queue up)."""

    async def work(lock: Any, box: list[int], share: int) -> None:
        for i in range(share):
            async with lock:
                box[0] += 1
                if i & 1:
                    await asyncio.sleep(0)

    async def main() -> float:
        lock, box, share = make_lock(), [0], n // tasks
        start = time.perf_counter()
        await asyncio.gather(*(work(lock, box, share) for _ in range(tasks)))
        seconds = time.perf_counter() - start
        expect("counter", box[0], share * tasks)
        return seconds

    return asyncio.run(main())


def asyncio_queue_run(make_queue: Callable[[], Any], n: int) -> float:
    """One producer puts ``n`` ints, one consumer gets them."""

    async def produce(q: Any) -> None:
        for i in range(n):
            await q.put(i)

    async def consume(q: Any) -> list[int]:
        return [await q.get() for _ in range(n)]

    async def main() -> float:
        q = make_queue()
        start = time.perf_counter()
        _, got = await asyncio.gather(produce(q), consume(q))
        seconds = time.perf_counter() - start
        expect("items received in order", got, list(range(n)))
        return seconds

    return asyncio.run(main())


# -- coroutines: critsec's scheduler against a bare round-robin loop -----------------------


class Box:
    value = 0


def bare_round_robin(tasks: list[Generator[Any, Any, Any]]) -> None:
    """The least a scheduler of generator tasks does: run each to its next
    ``yield`` in turn."""
    ready = deque(tasks)
    while ready:
        task = ready.popleft()
        try:
            next(task)
        except StopIteration:
            continue
        ready.append(task)


def increments(counter: Any, n: int) -> Generator[None, None, None]:
    for _ in range(n):
        counter.value += 1
        yield


def locked_increments(lock: Any, counter: Any, n: int) -> Generator[Any, Any, None]:
    """The lesson's coroutine: a switch inside the critical section."""
    for _ in range(n):
        with (yield from lock):
            value = counter.value
            yield
            counter.value = value + 1


class LeastLock:
    """The least lock that works for generator tasks run round-robin: a
    flag, and a wait that is a spin (``yield`` until it is down). No waiter
    list, no timeout, no checks: the floor for the locked rows' anchor."""

    locked = False

    def __iter__(self) -> Generator[None, None, LeastLock]:
        while self.locked:
            yield
        self.locked = True
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        self.locked = False


def coroutines_run(
    n: int, tasks: int = 2, lock: bool = False, bare: bool = False, same_counter: bool = False
) -> float:
    """``tasks`` generator tasks of ``n // tasks`` increments each (with a
    lock, the lesson's locked coroutine): run by critsec's coroutines
    runtime with its counter and lock, or (``bare``) by
    :func:`bare_round_robin` with a plain attribute (``same_counter``:
    critsec's counter) and :class:`LeastLock`."""
    import critsec

    share = n // tasks
    if bare:
        box: Any = critsec.runtime("coroutines").counter(0) if same_counter else Box()
        if lock:
            least = LeastLock()
            made = [locked_increments(least, box, share) for _ in range(tasks)]
        else:
            made = [increments(box, share) for _ in range(tasks)]
        start = time.perf_counter()
        bare_round_robin(made)
        seconds = time.perf_counter() - start
        expect("counter", box.value, share * tasks)
        return seconds
    rt = critsec.runtime("coroutines")
    counter = rt.counter(0)
    if lock:
        the_lock = rt.lock()
        jobs = [critsec.task(locked_increments, the_lock, counter, share) for _ in range(tasks)]
    else:
        jobs = [critsec.task(increments, counter, share) for _ in range(tasks)]
    start = time.perf_counter()
    rt.run(*jobs)
    seconds = time.perf_counter() - start
    expect("counter", counter.value, share * tasks)
    return seconds


# -- memory: a long pipeline that keeps nothing -------------------------------------------


def feed(q: Any, left: Any, items: range, batch: int) -> None:
    """Put ``items`` (``batch`` at a time with ``put_many``, if above 0);
    the last producer shuts ``q`` down."""
    try:
        if batch:
            for i in range(items.start, items.stop, batch * items.step):
                q.put_many(range(i, min(i + batch * items.step, items.stop), items.step))
        else:
            for item in items:
                q.put(item)
    finally:
        if left.add(-1) == 0:
            q.shutdown()


def tally(q: Any, batch: int) -> tuple[int, int]:
    """Take items until the queue is shut down; their count and sum (kept,
    unlike the items: the memory measured is the queue's, not a list's)."""
    import critsec

    count = total = 0
    try:
        while True:
            if batch:
                got = [d.item for d in q.get_many(batch)]
                count, total = count + len(got), total + sum(got)
            else:
                count, total = count + 1, total + q.get()
    except critsec.ShutDown:
        return count, total


def feed_generator(q: Any, left: Any, items: range) -> Generator[Any, Any, None]:
    try:
        for item in items:
            yield from q.put(item)
    finally:
        if left.add(-1) == 0:
            q.shutdown()


def tally_generator(q: Any) -> Generator[Any, Any, tuple[int, int]]:
    import critsec

    count = total = 0
    try:
        while True:
            total += yield from q.get()
            count += 1
    except critsec.ShutDown:
        return count, total


async def feed_async(q: Any, left: Any, items: range) -> None:
    try:
        for item in items:
            await q.put(item)
    finally:
        if left.add(-1) == 0:
            q.shutdown()


async def tally_async(q: Any) -> tuple[int, int]:
    import critsec

    count = total = 0
    try:
        while True:
            total += await q.get()
            count += 1
    except critsec.ShutDown:
        return count, total


def long_pipeline(runtime: str, n: int, pairs: int = 2, batch: int = 0) -> float:
    """``pairs`` producers put ``n`` ints in all into a queue of 10 (of
    ``10 * batch`` when batched) and ``pairs`` consumers take them, keeping
    only a count and a sum; checked: both exact. The seconds it took."""
    import critsec

    rt = critsec.runtime(runtime)
    q, left = rt.queue(10 * max(1, batch)), rt.counter(pairs)
    parts = [range(p, n, pairs) for p in range(pairs)]
    if rt.style == "blocking":
        jobs = [critsec.task(feed, q, left, part, batch) for part in parts]
        jobs += [critsec.task(tally, q, batch) for _ in parts]
    elif rt.style == "generator":
        jobs = [critsec.task(feed_generator, q, left, part) for part in parts]
        jobs += [critsec.task(tally_generator, q) for _ in parts]
    else:
        jobs = [critsec.task(feed_async, q, left, part) for part in parts]
        jobs += [critsec.task(tally_async, q) for _ in parts]
    start = time.perf_counter()
    results = rt.run(*jobs)
    seconds = time.perf_counter() - start
    taken = results[pairs:]
    expect("items taken", sum(c for c, _ in taken), n)
    expect("sum of the items taken", sum(t for _, t in taken), n * (n - 1) // 2)
    return seconds
