"""One virtual clock for every driver.

A schedule runs in virtual time: the clock starts at 0.0 and moves only
when the driver moves it -- to the deadline of a timed wait the scheduler
let expire, to an asyncio timer, or by a sleep. Nothing really sleeps, and
a schedule sees the same times on every run, so a replay is exact.

Every driver keeps its time in one :class:`VirtualClock`:

* the thread driver's schedule (``_threads._Schedule``), whose patch window
  (``_patches``) makes it ``time.monotonic`` and ``time.sleep`` for the
  task threads -- there a sleep is a timed wait that lets others run;
* the generator and asyncio drivers, whose tasks all run on the exploring
  thread: :meth:`VirtualClock.installed` makes the clock that thread's
  ``time.monotonic``, its ``time.sleep`` (which moves the clock: a task
  that sleeps holds up every other, as in a real run) and the clock of
  critsec's lock and queue algorithms (``_core.clock``); the asyncio
  loop's ``time()`` reads it too. Other threads keep the real ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import SupportsIndex

from ..runtimes import _core

__all__ = ["VirtualClock", "installed_clock"]

#: The real ones, taken at import, before any exploration patches them
#: (the threads patch window and the watchdogs use them too).
_real_monotonic = time.monotonic
_real_sleep = time.sleep

#: The clock installed by :meth:`VirtualClock.installed`, and its thread.
_installed: tuple[VirtualClock, int] | None = None


def installed_clock() -> VirtualClock | None:
    """The clock a cooperative driver installed, if one is (any thread)."""
    return None if _installed is None else _installed[0]


class VirtualClock:
    """Time for one schedule, in seconds from 0.0; never goes backwards."""

    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (a sleep)."""
        self.time += seconds

    def advance_to(self, moment: float) -> None:
        """Move forward to ``moment`` (a deadline reached); never back."""
        self.time = max(self.time, moment)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """This clock as the calling thread's ``time.monotonic``,
        ``time.sleep`` and ``_core.clock`` while the block runs (see the
        module docstring); restored on exit, however it ends."""
        global _installed
        from ._patches import Window  # its guard: one exploration at a time, per process

        Window.ensure_free()
        previous = _core.clock.now
        _installed = (self, threading.get_ident())
        _core.clock.now = self.now
        time.monotonic = _monotonic
        time.sleep = _sleep
        try:
            yield
        finally:
            time.monotonic = _real_monotonic
            time.sleep = _real_sleep
            _core.clock.now = previous
            _installed = None


def _mine() -> VirtualClock | None:
    """The installed clock, if the calling thread is the one it serves."""
    installed = _installed
    if installed is not None and installed[1] == threading.get_ident():
        return installed[0]
    return None


def _monotonic() -> float:
    clock = _mine()
    return _real_monotonic() if clock is None else clock.time


def _sleep(seconds: float | SupportsIndex) -> None:
    clock = _mine()
    if clock is None:
        _real_sleep(seconds)
        return
    length = float(seconds)  # time.sleep's TypeError for anything else
    if length < 0:
        raise ValueError("sleep length must be non-negative")
    clock.advance(length)
