"""What the processes runtime's robustness costs, uncontended, side by side.

Compares, in one process and one run, critsec's robust primitives with the
processes runtime as it was before them (read from git: ``--before REV``,
default the last commit with semaphore-based primitives) and with the
standard library, on the work a task does most: take and release a lock,
add to a counter, put and get an item. Repeats are interleaved (A B C A B
C ...) so that a change in the machine's load hits every contender alike;
medians are printed, with each ratio to the "before" contender.

    python benchmarks/robust_costs.py [--repeats 9] [--n 100000] [--before caa829b]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import critsec

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "caa829b"  # the semaphore-based primitives, before robust ones


def load_before(rev: str) -> ModuleType | None:
    """The processes runtime module as it was at ``rev`` (None: no git)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:src/critsec/runtimes/_processes.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    name = "critsec.runtimes._processes_before"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "critsec.runtimes"
    sys.modules[name] = module
    exec(compile(source, f"{rev}:_processes.py", "exec"), module.__dict__)
    return module


def with_lock(lock: Any) -> Callable[[int], None]:
    def work(n: int) -> None:
        for _ in range(n):
            with lock:
                pass

    return work


def acquire_release(lock: Any) -> Callable[[int], None]:
    def work(n: int) -> None:
        acquire, release = lock.acquire, lock.release
        for _ in range(n):
            acquire()
            release()

    return work


def counter_add(counter: Any) -> Callable[[int], None]:
    def work(n: int) -> None:
        add = counter.add
        for _ in range(n):
            add(1)

    return work


def value_add(value: Any) -> Callable[[int], None]:
    def work(n: int) -> None:
        lock = value.get_lock()
        for _ in range(n):
            with lock:
                value.value += 1

    return work


def put_get(q: Any) -> Callable[[int], None]:
    def work(n: int) -> None:
        put, get = q.put, q.get
        for i in range(n):
            put(i)
            get()

    return work


def measure(rows: dict[str, dict[str, Callable[[int], None]]], n: int, repeats: int) -> None:
    for row, contenders in rows.items():
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(repeats):
            for name, work in contenders.items():
                start = time.perf_counter()
                work(n)
                times[name].append((time.perf_counter() - start) / n * 1e9)
        medians = {name: statistics.median(t) for name, t in times.items()}
        base = medians.get("before")
        print(f"\n{row}")
        for name, ns in medians.items():
            ratio = f"{ns / base:5.2f}x before" if base else ""
            print(f"  {name:28s} {ns:8.0f} ns  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--n", type=int, default=100_000, help="operations per repeat")
    parser.add_argument("--before", default=BEFORE, help="git revision of the baseline")
    args = parser.parse_args()
    if args.repeats < 1 or args.n < 1:
        parser.error("--repeats and --n must be at least 1")
    before = load_before(args.before)
    rt = critsec.runtime("processes")
    mp = multiprocessing.get_context()
    print(
        f"critsec robust primitives vs before ({args.before if before else 'not found'}) "
        f"and the standard library; Python {sys.version.split()[0]}, {args.repeats} "
        f"interleaved repeats of {args.n} operations, medians"
    )
    rows: dict[str, dict[str, Callable[[int], None]]] = {
        "lock: `with lock: pass`": {"critsec (robust mutex)": with_lock(rt.lock())},
        "lock: acquire(); release()": {"critsec (robust mutex)": acquire_release(rt.lock())},
        "counter: add(1)": {"critsec (atomic add)": counter_add(rt.counter())},
        "queue: put(i); get(), one process": {"critsec (robust)": put_get(rt.queue(10))},
    }
    if before is not None:
        rows["lock: `with lock: pass`"]["before"] = with_lock(before.ProcessLock())
        rows["lock: acquire(); release()"]["before"] = acquire_release(before.ProcessLock())
        rows["counter: add(1)"]["before"] = counter_add(before.ProcessCounter())
        rows["queue: put(i); get(), one process"]["before"] = put_get(before.ProcessQueue(10))
    rows["lock: `with lock: pass`"]["multiprocessing.Lock"] = with_lock(mp.Lock())
    rows["lock: acquire(); release()"]["multiprocessing.Lock"] = acquire_release(mp.Lock())
    rows["counter: add(1)"]["Value + get_lock()"] = value_add(mp.Value("q", 0))
    rows["queue: put(i); get(), one process"]["multiprocessing.Queue(10)"] = put_get(mp.Queue(10))
    measure(rows, args.n, args.repeats)


if __name__ == "__main__":
    main()
