"""The Bluetooth driver model (see ``bluetooth_driver``) fixed: the I/O
request tests ``stopping`` and increments the count in one locked region,
and decrements only if it incremented, so the stop routine's decrement can
reach zero only when no request is inside. SCTBench has no fixed twin;
this is the natural fix: the check and the increment made one atomic
step."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "Bluetooth driver fixed: test 'stopping' and count the I/O in one locked region"


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        pending_io=1, stopping=False, stopping_event=False, stopped=False,
        lock=threading.Lock(), used_after_stop=False,
    )  # fmt: skip


def io_increment(s: SimpleNamespace) -> int:
    with s.lock:
        if s.stopping:
            return -1
        s.pending_io += 1
    return 0


def io_decrement(s: SimpleNamespace) -> None:
    with s.lock:
        s.pending_io -= 1
        pending = s.pending_io
    if pending == 0:
        s.stopping_event = True


def pnp_add(s: SimpleNamespace) -> None:
    if io_increment(s) == 0:
        if s.stopped:
            s.used_after_stop = True
        io_decrement(s)


def pnp_stop(s: SimpleNamespace) -> None:
    s.stopping = True
    io_decrement(s)
    if s.stopping_event:
        s.stopped = True


tasks = [pnp_add, pnp_stop]


def invariant(s: SimpleNamespace) -> bool:
    return not s.used_after_stop
