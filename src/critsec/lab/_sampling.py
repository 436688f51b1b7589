"""A queue's length over a pipeline run, sampled: ``critsec pipeline --plot``.

Each sample is a real ``qsize()`` reading and the moment it was taken
(seconds since sampling started). Memory stays bounded however long the
run: when :data:`MAX_SAMPLES` are held, every other one is dropped and the
interval between readings doubles, so the samples stay evenly spread over
the whole run.

Where the sampler runs depends on where the tasks run. Tasks in this
process (threads, coroutines, asyncio): a thread, stopped when ``run()``
returns, whatever happened. Tasks in processes (processes, redis): one
more task, :func:`sample_blocking`, a process that sleeps between
readings -- a thread would be running in this process when the runtime
forks its children, which can deadlock them (Python 3.12+ warns); and
the runtime stops that process with the others if a task fails.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["MAX_SAMPLES", "SamplerThread", "Samples", "sample_blocking"]

#: At most this many samples are held (one more: the final reading).
MAX_SAMPLES = 512
#: Seconds between the first readings; doubled each time the samples are thinned.
FIRST_INTERVAL = 0.001


class Samples:
    """(seconds, qsize) pairs, at most :data:`MAX_SAMPLES`, evenly thinned."""

    def __init__(self) -> None:
        self.points: list[tuple[float, int]] = []
        self.interval = FIRST_INTERVAL
        self._start = time.perf_counter()

    def read(self, q: Any) -> int:
        """Read ``q.qsize()`` now and keep it; returns it."""
        size = int(q.qsize())
        if len(self.points) >= MAX_SAMPLES:
            del self.points[1::2]  # the first stays: the run's start
            self.interval *= 2
        self.points.append((round(time.perf_counter() - self._start, 6), size))
        return size


def sample_blocking(q: Any, producers_left: Any) -> list[tuple[float, int]]:
    """A task (processes, redis): read ``q``'s length until every producer
    has finished and the queue is empty, then return the samples."""
    samples = Samples()
    while True:
        size = samples.read(q)
        if size == 0 and producers_left.value == 0:
            return samples.points
        time.sleep(samples.interval)


class SamplerThread:
    """Tasks in this process: a daemon thread reading ``q``'s length from
    ``start()`` to ``stop()``, which takes one last reading and returns the
    samples."""

    def __init__(self, q: Any) -> None:
        self._q = q
        self._samples = Samples()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="critsec-qsize", daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self._samples.read(self._q)
            self._done.wait(self._samples.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[tuple[float, int]]:
        self._done.set()
        self._thread.join()
        self._samples.read(self._q)
        return self._samples.points
