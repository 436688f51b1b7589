"""What a locked update costs: critsec's processes runtime against the
lesson's ``multiprocessing.Manager`` and against bare ``multiprocessing``.

The lesson shares its counter between processes through a ``Manager``:
every ``counter.value`` and every lock operation is a round trip to a
server process. critsec keeps the counter in shared memory and locks it
with an OS semaphore. This script measures the lesson's experiment -- two
processes, one adding 1 ``n`` times and one subtracting 1 ``n + 1`` times,
each update under the lock -- three ways, in one run, in interleaved
repeats (A B C A B C ...), and prints the median time per update and the
ratio to the baseline (``RawValue`` + ``multiprocessing.Lock``, the
cheapest thing the standard library has). Every run is checked: the
counter must end at 9.

    python benchmarks/lesson_costs.py [--updates N] [--repeats R]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import critsec


def _locked_updates(lock: Any, counter: Any, n: int, delta: int) -> None:
    for _ in range(n):
        with lock:
            counter.value += delta


def _two_processes(ctx: Any, lock: Any, counter: Any, n: int) -> float:
    """Seconds for the lesson's two processes on ``lock`` and ``counter``."""
    procs = [
        ctx.Process(target=_locked_updates, args=(lock, counter, n, 1)),
        ctx.Process(target=_locked_updates, args=(lock, counter, n + 1, -1)),
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    if counter.value != 9 or any(p.exitcode for p in procs):
        raise SystemExit(f"a run went wrong: counter {counter.value}, exit codes {procs}")
    return seconds


def critsec_processes(n: int) -> float:
    rt = critsec.runtime("processes", start_method="fork")
    lock, counter = rt.lock(), rt.counter(10)
    started = time.perf_counter()
    rt.run(
        critsec.task(_locked_updates, lock, counter, n, 1),
        critsec.task(_locked_updates, lock, counter, n + 1, -1),
    )
    seconds = time.perf_counter() - started
    if counter.value != 9:
        raise SystemExit(f"critsec's counter ended at {counter.value}, not 9")
    return seconds


def raw_value(n: int) -> float:
    ctx = multiprocessing.get_context("fork")
    return _two_processes(ctx, ctx.Lock(), ctx.RawValue("q", 10), n)


def manager(n: int) -> float:
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as m:
        return _two_processes(ctx, m.Lock(), m.Value("i", 10), n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=200_000, help="updates per process")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    args = parser.parse_args(argv)
    # The Manager is ~100x slower: give it fewer updates, report per update.
    ways: dict[str, tuple[Callable[[int], float], int]] = {
        "RawValue + multiprocessing.Lock (baseline)": (raw_value, args.updates),
        "critsec processes: rt.lock() + rt.counter()": (critsec_processes, args.updates),
        "the lesson: Manager().Lock() + Manager().Value()": (manager, max(1, args.updates // 20)),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, (run, n) in ways.items():
            times[name].append(run(n) / (2 * n + 1))
    base = statistics.median(times[next(iter(ways))])
    print(
        f"Python {sys.version.split()[0]}, {args.repeats} interleaved repeats, "
        f"medians per locked update (2 processes, counter checked every run)"
    )
    print(f"{'':52} {'µs/update':>10} {'x baseline':>11}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:52} {median * 1e6:10.2f} {median / base:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
