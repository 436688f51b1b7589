"""The redis runtime next to what Python users have on Redis today.

On one server (a private one, or ``--url``), in one run:

* **uncontended lock**: acquire + release pairs per second -- critsec's
  ``RedisLock``, redis-py's ``Lock`` and python-redis-lock's ``Lock``
  (when installed: ``pip install python-redis-lock``);
* **contention**: ``--procs`` processes (default 8) each take the lock and
  hold it ``--hold`` seconds (default 0.01), over and over for
  ``--seconds`` (default 10): acquisitions in total, and the fewest and
  most per process (min/max = 1 is perfectly fair);
* **hand-over**: how soon a waiting process has the lock after a release,
  next to the machine's floor (a bare ``RPUSH`` waking a ``BLPOP``, and how
  far ``time.sleep`` overshoots);
* **timeouts**: how late ``acquire`` of a held lock with a 50 ms timeout
  gives up;
* **counter**: ``counter.add(1)`` against redis-py's ``INCRBY``;
* **queue**: items per second from producers to consumers (1P1C and
  4P4C) through critsec's queue, one item at a time and in batches
  (``put_many``/``get_many``, ``--batch`` items), against redis-py ``LPUSH``
  + ``BRPOP`` one item at a time, and pipelined (``--batch`` LPUSHes per
  round trip).

Repeats of the one-process measurements are interleaved (A B C A B C ...)
and their medians shown, each with its ratio to redis-py's; the
multi-process ones run once per contender (they take seconds each).

    python benchmarks/redis_bench.py [--quick] [--url redis://...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import redis

import critsec
from critsec.runtimes._redis import RedisRuntime

try:
    import redis_lock  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # a benchmark peer, not a dependency
    redis_lock = None


# -- contenders, as factories run in any process ----------------------------------------


def make_lock(kind: str, url: str, name: str) -> Any:
    if kind == "critsec":
        return cast(RedisRuntime, critsec.runtime(url)).lock(name)
    client = redis.Redis.from_url(url)
    if kind == "redis-py":
        return client.lock(name)
    return redis_lock.Lock(client, name)


def lock_kinds() -> list[str]:
    return ["critsec", "redis-py"] + (["python-redis-lock"] if redis_lock else [])


def pairs_per_second(lock: Any, n: int) -> float:
    acquire, release = lock.acquire, lock.release
    start = time.perf_counter()
    for _ in range(n):
        acquire()
        release()
    return n / (time.perf_counter() - start)


def interleaved(contenders: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Medians of each contender's rate, measured A B C A B C ..."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, measure in contenders.items():
            rates[name].append(measure())
    return {name: statistics.median(values) for name, values in rates.items()}


# -- contention ------------------------------------------------------------------------------


def contend(kind: str, url: str, name: str, hold: float, seconds: float, start: Any) -> int:
    lock = make_lock(kind, url, name)
    start.wait()
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        with lock:
            time.sleep(hold)  # the work done holding the lock
            count += 1
    return count


def contention(kind: str, url: str, procs: int, hold: float, seconds: float) -> list[int]:
    # multiprocessing.Event cannot go through Pool.apply_async's pickling; a
    # Manager's can.
    with multiprocessing.get_context("fork").Manager() as manager:
        start = manager.Event()
        name = f"bench-contention-{uuid.uuid4().hex}"
        context = multiprocessing.get_context("fork")
        with context.Pool(procs) as pool:
            pending = [
                pool.apply_async(contend, (kind, url, name, hold, seconds, start))
                for _ in range(procs)
            ]
            start.set()
            return [p.get(seconds * 10 + 60) for p in pending]


# -- what a hand-over costs, and the machine's floor ------------------------------------


def _woken(kind: str, url: str, name: str, times: Any, go: Any, n: int) -> None:
    """Wait ``n`` times -- for the lock, or on a bare BLPOP -- when told to
    (``go``), and note when woken."""
    lock = make_lock("critsec", url, name) if kind == "critsec" else None
    client = redis.Redis.from_url(url)
    for i in range(n):
        go.acquire()
        if lock is not None:
            lock.acquire()
            times[i] = time.monotonic()
            lock.release()
        else:
            client.blpop([name])
            times[i] = time.monotonic()


def wake_latency(kind: str, url: str, n: int = 100) -> float:
    """Median ms from a release (critsec's lock) or an RPUSH (bare Redis)
    in this process to the waiter in another process running again. The
    monotonic clock is the machine's, so both processes can read it."""
    context = multiprocessing.get_context("fork")
    name = f"bench-wake-{uuid.uuid4().hex}"
    times, go = context.Array("d", n), context.Semaphore(0)
    lock = make_lock("critsec", url, name) if kind == "critsec" else None
    client = redis.Redis.from_url(url)
    if lock is not None:
        lock.acquire()
    waiter = context.Process(target=_woken, args=(kind, url, name, times, go, n))
    waiter.start()
    late: list[float] = []
    for i in range(n):
        go.release()
        time.sleep(0.005)  # the waiter blocks meanwhile (the workload, not a sync)
        start = time.monotonic()
        if lock is not None:
            lock.release()
        else:
            client.rpush(name, 1)
        while times[i] == 0:
            time.sleep(0.0001)
        late.append((float(times[i]) - start) * 1000)
        if lock is not None:
            lock.acquire()
    if lock is not None:
        lock.release()
    waiter.join()
    return statistics.median(late)


def sleep_overshoot(seconds: float = 0.01, n: int = 100) -> float:
    late = []
    for _ in range(n):
        start = time.monotonic()
        time.sleep(seconds)
        late.append((time.monotonic() - start - seconds) * 1000)
    return statistics.median(late)


# -- counter and queue ------------------------------------------------------------------------


def counter_rates(url: str, n: int, repeats: int) -> dict[str, float]:
    counter = critsec.runtime(url).counter(0)
    client = redis.Redis.from_url(url)
    key = f"bench-incr-{uuid.uuid4().hex}"

    def ours() -> float:
        start = time.perf_counter()
        for _ in range(n):
            counter.add(1)
        return n / (time.perf_counter() - start)

    def theirs() -> float:
        start = time.perf_counter()
        for _ in range(n):
            client.incrby(key, 1)
        return n / (time.perf_counter() - start)

    return interleaved({"critsec": ours, "redis-py": theirs}, repeats)


def critsec_producer(q: Any, items: int, batch: int) -> None:
    if batch <= 1:
        for i in range(items):
            q.put(i)
        return
    for first in range(0, items, batch):
        q.put_many(range(first, min(items, first + batch)))


def critsec_consumer(q: Any, items: int, batch: int) -> int:
    left = items
    while left:
        if batch <= 1:
            q.get()
            left -= 1
        else:
            left -= len(q.get_many(min(batch, left)))
    return items


def plain_producer(url: str, key: str, items: int, batch: int) -> None:
    client = redis.Redis.from_url(url)
    if batch <= 1:
        for i in range(items):
            client.lpush(key, i)
        return
    for first in range(0, items, batch):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(items, first + batch)):
            pipe.lpush(key, i)
        pipe.execute()


def plain_consumer(url: str, key: str, items: int) -> int:
    client = redis.Redis.from_url(url)
    for _ in range(items):
        client.brpop([key])
    return items


def queue_rate(kind: str, url: str, pairs: int, items: int, batch: int) -> float:
    """Items per second from ``pairs`` producers to ``pairs`` consumers."""
    context = multiprocessing.get_context("fork")
    each = items // pairs
    jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]
    if kind.startswith("critsec"):
        q = cast(RedisRuntime, critsec.runtime(url)).queue(max(100, 2 * batch))
        jobs = [(critsec_producer, (q, each, batch)) for _ in range(pairs)]
        jobs += [(critsec_consumer, (q, each, batch)) for _ in range(pairs)]
    else:
        key = f"bench-list-{uuid.uuid4().hex}"
        jobs = [(plain_producer, (url, key, each, batch)) for _ in range(pairs)]
        jobs += [(plain_consumer, (url, key, each)) for _ in range(pairs)]
    processes = [context.Process(target=f, args=a) for f, a in jobs]
    start = time.perf_counter()
    for p in processes:
        p.start()
    for p in processes:
        p.join()
        assert p.exitcode == 0, f"{kind}: a process failed"
    return each * pairs / (time.perf_counter() - start)


# -- the report ---------------------------------------------------------------------------------


def table(title: str, rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for k, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def rate_rows(head: list[str], rates: dict[str, float], base: str) -> list[list[str]]:
    return [head] + [[k, f"{v:,.0f}", f"{v / rates[base]:.2f}x"] for k, v in rates.items()]


def timeout_overshoot(kind: str, url: str, seconds: float, repeats: int) -> float:
    """Median ms past ``seconds`` that a timed acquire of a held lock returns."""
    name = f"bench-timeout-{uuid.uuid4().hex}"
    holder, waiter = make_lock(kind, url, name), make_lock(kind, url, name)
    assert holder.acquire()
    late = []
    for _ in range(repeats):
        start = time.perf_counter()
        if kind == "critsec":
            got = waiter.acquire(timeout=seconds)
        elif kind == "redis-py":
            got = waiter.acquire(blocking_timeout=seconds)
        else:
            got = waiter.acquire(timeout=seconds)
        late.append((time.perf_counter() - start - seconds) * 1000)
        assert not got
    holder.release()
    return statistics.median(late)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a server to use (default: a private one)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about a minute")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--hold", type=float, default=0.01)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats = 3.0, 3
    rt = cast(RedisRuntime, critsec.runtime(args.url or "redis"))
    url = rt.url
    info = redis.Redis.from_url(url).info("server")
    server = (
        f"valkey {info['valkey_version']}"
        if "valkey_version" in info
        else f"redis {info['redis_version']}"
    )
    peer = f"python-redis-lock {redis_lock.__version__}" if redis_lock else "no python-redis-lock"
    print(
        f"critsec redis benchmark: {server}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, redis-py {redis.__version__}, {peer}"
    )

    n = 2000 if args.quick else 5000
    locks = {kind: make_lock(kind, url, f"bench-{uuid.uuid4().hex}") for kind in lock_kinds()}
    measures: dict[str, Callable[[], float]] = {
        kind: functools.partial(pairs_per_second, lock, n) for kind, lock in locks.items()
    }
    rates = interleaved(measures, args.repeats)
    table(
        f"uncontended lock: acquire + release pairs/s (median of {args.repeats} x {n})",
        rate_rows(["lock", "pairs/s", "vs redis-py"], rates, "redis-py"),
    )

    rows = [["lock", "acquisitions", "min/process", "max/process", "min/max"]]
    for kind in lock_kinds():
        counts = contention(kind, url, args.procs, args.hold, args.seconds)
        low, high = min(counts), max(counts)
        rows.append([kind, f"{sum(counts):,}", str(low), str(high), f"{low / high:.2f}"])
    table(
        f"contention: {args.procs} processes each holding the lock {args.hold * 1000:.0f} ms "
        f"for {args.seconds:.0f} s (at most {args.seconds / args.hold:,.0f} in all)",
        rows,
    )

    print(
        f"hand-over: critsec's lock reaches a waiting process in "
        f"{wake_latency('critsec', url):.2f} ms; the floor -- a bare RPUSH waking a BLPOP "
        f"-- {wake_latency('bare', url):.2f} ms; time.sleep({args.hold}) overshoots by "
        f"{sleep_overshoot(args.hold):.2f} ms (medians)"
    )

    rows = [["lock", "ms late (median)"]]
    for kind in lock_kinds():
        try:
            late = f"{timeout_overshoot(kind, url, 0.05, args.repeats):.1f}"
        except Exception as error:  # a peer that cannot do it says so
            late = f"failed: {type(error).__name__}: {error}"
        rows.append([kind, late])
    table("a timed acquire of a held lock: acquire(timeout=0.05) returns False, how late", rows)

    table(
        f"counter: adds per second (median of {args.repeats} x {n})",
        rate_rows(
            ["counter", "adds/s", "vs redis-py"], counter_rates(url, n, args.repeats), "redis-py"
        ),
    )

    items = 4000 if args.quick else 20000
    rows = [["queue", "1P1C items/s", "vs LPUSH/BRPOP", "4P4C items/s", "vs LPUSH/BRPOP"]]
    results = {
        kind: [queue_rate(kind, url, pairs, items, batch) for pairs in (1, 4)]
        for kind, batch in (
            ("critsec", 1),
            ("critsec put_many/get_many", args.batch),
            ("redis-py", 1),
            ("redis-py pipelined", args.batch),
        )
    }
    plain = results["redis-py"]
    for kind, (one, four) in results.items():
        rows.append(
            [
                kind,
                f"{one:,.0f}",
                f"{one / plain[0]:.2f}x",
                f"{four:,.0f}",
                f"{four / plain[1]:.2f}x",
            ]
        )
    table(
        f"queue: {items:,} items (critsec: maxsize 100, 200 batched); batches of {args.batch}",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
