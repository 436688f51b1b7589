"""Starting a thread schedule's task threads: all at once, and on one CPU.

Both are about cost only: what runs, and in which order, is the
schedule's (:mod:`._threads`). Either falls back to the plain way when it
cannot do better.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["on_one_cpu", "pin_to_this_cpu", "start_all"]


class _NoWait:
    """Stands in for a ``Thread``'s ``_started`` event while its ``start()``
    runs: ``wait`` returns at once, ``set`` (by the new thread, whenever it
    gets there) reaches the real event."""

    __slots__ = ("real",)

    def __init__(self, real: threading.Event) -> None:
        self.real = real

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def set(self) -> None:
        self.real.set()

    def is_set(self) -> bool:
        return self.real.is_set()


def start_all(threads: list[threading.Thread]) -> None:
    """Start ``threads`` and return once every one is up, as calling
    ``start()`` on each would -- but without waiting for each in turn:
    ``Thread.start`` waits on the thread's ``_started`` event until the new
    thread got the GIL. On 2 busy cores 101 threads took 52 ms (3.11) and
    80 ms (3.13) that way, and 4.3 ms launched together (medians of 15);
    on a quiet machine, explore_speed's 100-thread start went from 17.7 to
    11.5 ms (3.11) and from 12.1 to 10.1 ms (3.13). CPython 3.11-3.13 all
    wait on ``_started``; a thread without one gets a plain ``start()``."""
    waiting = []
    for thread in threads:
        real = getattr(thread, "_started", None)
        if not isinstance(real, threading.Event):
            thread.start()
            continue
        thread._started = _NoWait(real)  # type: ignore[attr-defined]
        try:
            thread.start()
        finally:
            thread._started = real  # type: ignore[attr-defined]
        waiting.append(real)
    for event in waiting:
        event.wait()


@contextmanager
def on_one_cpu() -> Iterator[None]:
    """Run the calling thread, and the threads it starts meanwhile, on the
    CPU it runs on now (Linux; elsewhere, or with one CPU, nothing changes).

    One task thread runs at a time, so a second CPU adds no parallelism,
    only cost: each hand-off of the baton to a thread asleep on the other
    CPU pays a cross-CPU wake-up. On one CPU a hand-off costs 7-12 us
    instead of 20-37 us (2 and 101 threads, a bare ``_thread`` lock relay);
    ``explore_speed.py``'s rows ran about 1.5-2x the steps per second (see
    ``benchmarks/README.md``). The CPU is the current one, read afresh for
    every schedule, so the operating system's placement still decides. (A
    process a task starts inherits the one CPU; the caller gets its own set
    back when the schedule ends.)"""
    before = pin_to_this_cpu()
    try:
        yield
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


def pin_to_this_cpu() -> set[int] | None:
    """Pin the calling thread to the CPU it runs on. The CPUs it had, or
    None if nothing changed: not Linux, one CPU, or refused (a sandbox)."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # not Linux
        return None
    if len(allowed) < 2:
        return None
    try:
        with open("/proc/thread-self/stat") as stat:
            cpu = int(stat.read().rsplit(")", 1)[1].split()[36])  # field 39, "processor"
    except (OSError, ValueError, IndexError):
        cpu = min(allowed)
    try:
        os.sched_setaffinity(0, {cpu} if cpu in allowed else {min(allowed)})
    except OSError:
        return None
    return allowed
