"""The floors under critsec's primitives: what the cheapest possible version
of each operation costs on this machine, from Python.

docs/performance.md compares each runtime's time per operation with these:
how far a runtime is from its floor says how much there is left to win.
Each figure is the median of ``--repeats`` runs of ``--n`` operations, in
nanoseconds per operation (a hand-over between processes: per one-way trip).

    python benchmarks/floors.py [--n 200000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import mmap
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator

from critsec.runtimes import _robust


def per_op(work: Callable[[int], None], n: int, repeats: int) -> float:
    """Median ns per operation of ``work(n)``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work(n)
        times.append((time.perf_counter() - start) / n * 1e9)
    return statistics.median(times)


def empty_loop(n: int) -> None:
    for _ in range(n):
        pass


def robust_mutex(n: int) -> None:
    memory = mmap.mmap(-1, _robust.MUTEX_SIZE)
    mutex = _robust.Mutex(memory, create=True)
    acquire, release = mutex.acquire, mutex.release
    for _ in range(n):
        acquire()
        release()


def semaphore(n: int) -> None:
    lock = multiprocessing.get_context("fork").Lock()
    acquire, release = lock.acquire, lock.release
    for _ in range(n):
        acquire()
        release()


def thread_lock(n: int) -> None:
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    for _ in range(n):
        acquire()
        release()


def atomic_add(n: int) -> None:
    memory = mmap.mmap(-1, 8)
    address = ctypes.addressof(ctypes.c_int64.from_buffer(memory))
    add = _robust.add
    for _ in range(n):
        add(address, 1)


def generator_switch(n: int) -> None:
    def task() -> Iterator[None]:
        while True:
            yield

    resume = task().__next__
    for _ in range(n):
        resume()


def asyncio_switch(n: int) -> None:
    async def main() -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    asyncio.run(main())


def _echo(read_fd: int, write_fd: int, n: int) -> None:
    for _ in range(n):
        os.write(write_fd, os.read(read_fd, 1))


def pipe_hand_over(n: int) -> None:
    """n round trips of one byte between two processes (2n one-way trips:
    the caller divides by 2)."""
    there_r, there_w = os.pipe()
    back_r, back_w = os.pipe()
    echo = multiprocessing.get_context("fork").Process(
        target=_echo, args=(there_r, back_w, n), daemon=True
    )
    echo.start()
    for _ in range(n):
        os.write(there_w, b"x")
        os.read(back_r, 1)
    echo.join()
    for fd in (there_r, there_w, back_r, back_w):
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    n, repeats = args.n, args.repeats
    print(
        f"floors, ns per operation (medians of {repeats} x {n:,}); "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    loop = per_op(empty_loop, n, repeats)
    measured: list[tuple[str, Callable[[int], None], int, int]] = [
        ("robust mutex acquire + release (critsec's, C)", robust_mutex, n, 1),
        ("POSIX semaphore acquire + release (multiprocessing.Lock)", semaphore, n, 1),
        ("threading.Lock acquire + release", thread_lock, n, 1),
        ("atomic add on shared memory (critsec's, C)", atomic_add, n, 1),
        ("a generator resumed to its next yield", generator_switch, n, 1),
        ("asyncio: one await asyncio.sleep(0)", asyncio_switch, n // 4, 1),
        ("a pipe hand-over to another process, one way", pipe_hand_over, n // 10, 2),
    ]
    rows = [("an empty loop iteration (subtracted from the rows below)", loop, False)]
    rows += [(name, per_op(work, k, repeats) / trips, True) for name, work, k, trips in measured]
    for name, value, net in rows:
        print(f"  {name:60} {value - loop if net else value:10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
