"""The Bluetooth driver model of Qadeer and Wu (KISS, PLDI 2004), as in
SCTBench's ``bluetooth_driver`` (CS benchmarks, Thomson, Donaldson and
Betts, TOPC 2016; ESBMC's ``bluetooth_driver_bad.c``), transcribed: an I/O
request checks ``stopping`` and then increments the pending-I/O count (the
count's updates atomic: one lock here); the stop routine raises
``stopping``, drops its own reference and, when the count reaches zero,
frees the device. A request that checked the flag just before the stop
increments the count after the device is gone and uses it -- one
preemption, between the check and the increment."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = True
DESCRIPTION = "Bluetooth driver (KISS): check 'stopping', then count the I/O; stop frees in between"


def setup() -> SimpleNamespace:
    return SimpleNamespace(
        pending_io=1, stopping=False, stopping_event=False, stopped=False,
        lock=threading.Lock(), used_after_stop=False,
    )  # fmt: skip


def io_increment(s: SimpleNamespace) -> int:
    if s.stopping:
        return -1
    with s.lock:
        s.pending_io += 1
    return 0


def io_decrement(s: SimpleNamespace) -> None:
    with s.lock:
        s.pending_io -= 1
        pending = s.pending_io
    if pending == 0:
        s.stopping_event = True


def pnp_add(s: SimpleNamespace) -> None:
    # the work, on a device maybe already freed
    if io_increment(s) == 0 and s.stopped:
        s.used_after_stop = True
    io_decrement(s)


def pnp_stop(s: SimpleNamespace) -> None:
    s.stopping = True
    io_decrement(s)
    if s.stopping_event:
        s.stopped = True  # release the device's resources


tasks = [pnp_add, pnp_stop]


def invariant(s: SimpleNamespace) -> bool:
    return not s.used_after_stop
