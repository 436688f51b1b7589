"""How fast the explorer runs thread tasks: steps per second, and where a
schedule's time goes, for 2, 10 and 100 threads.

    python benchmarks/explore_speed.py [--schedules N]

Each thread runs ``for _ in range(10): with lock: s.n += 1`` (the locked
lesson); the strategy is ``random`` with seed 1, so every run takes the
same schedules. A step is one decision of the scheduler (``Scheduler.steps``).
Printed per thread count: steps per schedule, steps per second over the
whole schedule, milliseconds per schedule, and the part of it spent
starting the task threads (``_Schedule.start``) and running the steps
(``_Schedule.go``). One run; the machine's other load moves every number
alike, so each row also gives a baseline measured in the same run: a bare
relay of ``_thread`` locks among as many threads, the next drawn at
random, on one CPU as a schedule's threads run (the floor under a step
that switches), and what one explorer step costs in such hand-offs. A
script, never a test: nothing here asserts a time.
"""

from __future__ import annotations

import _thread
import argparse
import functools
import platform
import random
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from critsec.explorer import _launch, _threads
from critsec.explorer._scheduler import RandomStrategy, Scheduler
from critsec.explorer._trace import Recorder


def setup() -> SimpleNamespace:
    return SimpleNamespace(n=0, lock=threading.Lock())


def work(s: SimpleNamespace) -> None:
    for _ in range(10):
        with s.lock:
            s.n += 1


def holds(expected: int, s: SimpleNamespace) -> bool:
    return bool(s.n == expected)


def timed(spent: dict[str, float], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

    return run


def bare_hop(n: int, hops: int = 4000) -> float:
    """Microseconds per hand-off of a bare ``_thread`` lock relay among
    ``n`` threads, each passing to another drawn at random, on one CPU."""
    batons = [_thread.allocate_lock() for _ in range(n)]
    for baton in batons:
        baton.acquire()
    done = _thread.allocate_lock()
    done.acquire()
    rng, left, stop = random.Random(1), [hops], [False]

    def relay(i: int) -> None:
        while True:
            batons[i].acquire()
            if stop[0]:
                return
            left[0] -= 1
            if left[0] == 0:
                done.release()
                return
            j = rng.randrange(n - 1)
            batons[j + (j >= i)].release()

    with _launch.on_one_cpu():
        threads = [threading.Thread(target=relay, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        batons[0].release()
        done.acquire()
        seconds = time.perf_counter() - started
        stop[0] = True
        for baton in batons:  # every thread sleeps on its own, or has returned holding it
            baton.release()
        for thread in threads:
            thread.join()
    return seconds / hops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=200, help="thread-schedules per row")
    args = parser.parse_args()
    spent: dict[str, float] = {}
    for name in ("start", "go"):
        setattr(_threads._Schedule, name, timed(spent, name, getattr(_threads._Schedule, name)))
    print(f"Python {platform.python_version()}, backend {_threads.BACKEND}, {sys.platform}")
    print(f"{'threads':>7} {'steps/schedule':>15} {'steps/s':>9} {'ms/schedule':>12} "
          f"{'start ms':>9} {'steps ms':>9} {'bare hop us':>12} {'step/hop':>9}")  # fmt: skip
    for n in (2, 10, 100):
        spent.clear()
        runs = max(2, args.schedules // n)
        driver, strategy, rng = _threads.ThreadDriver(), RandomStrategy(), random.Random(1)
        steps, started = 0, time.perf_counter()
        for _ in range(runs):
            strategy.begin(rng)
            scheduler = Scheduler(strategy)
            invariant = functools.partial(holds, 10 * n)
            outcome = driver.run(setup, [work] * n, invariant, scheduler, Recorder())
            if outcome.kind is not None:
                raise SystemExit(f"a correct program failed: {outcome.message}")
            steps += scheduler.steps
        seconds = time.perf_counter() - started
        hop = bare_hop(n)
        print(
            f"{n:>7} {steps / runs:>15,.0f} {steps / seconds:>9,.0f} {seconds / runs * 1e3:>12.1f} "
            f"{spent['start'] / runs * 1e3:>9.1f} {spent['go'] / runs * 1e3:>9.1f} "
            f"{hop:>12.1f} {seconds / steps * 1e6 / hop:>9.1f}"
        )


if __name__ == "__main__":
    main()
