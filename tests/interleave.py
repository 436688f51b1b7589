"""Forced interleavings of real processes, for the processes runtime's tests.

The processes runtime runs each task in its own process, scheduled by the
operating system: a bare ``yield`` in a test body switches nothing, and two
processes racing through ``counter.add`` collide so rarely that a stress
test proves nothing. This module makes the interesting interleavings
happen on purpose, every run, with two tools.

1. "B is blocked now" (:class:`ProcessProbe`)
---------------------------------------------
A test often needs "task B is blocked in ``get()``" (before it shuts the
queue down) or "B waits behind A in ``acquire()``". A child process of the
runtime runs one thread. B *announces* that it is about to call the
operation (a plain write to shared memory: no system call) and reports
when it got past it. In between, the only place where B can sleep in the
kernel is inside the operation, so ``/proc/<pid>/stat`` state ``S``
(interruptible sleep) means: B is blocked in it. The observer polls until
it sees that, or sees that B got past the operation (a broken lock lets B
in at once), and says which. It never assumes that time passing means
anything happened: it waits for a state it sees.

Limits. Linux only (``/proc``; elsewhere the tests that need it are skipped
with that reason). The probed process must be single-threaded (checked).
``S`` says *that* B sleeps, not *on what*: the operation must have one place
to wait at that moment. A queue's ``get`` also waits for the queue's mutex
while another task holds it, so a test that wants "blocked for an item"
lets one getter block before the next one announces. Announcing before a
blocking call and reporting after it is up to the test body.

2. Pausing inside a call (:func:`add_at_every_line`)
----------------------------------------------------
``counter.add(delta)`` must be atomic across processes, and no barrier can
be placed inside it. Instead, process P runs ``add`` under ``sys.settrace``
and pauses at its k-th line event *inside the call* (in ``add`` or in any
Python function it calls, such as the lock's ``__enter__``); while P is
paused, process Q runs its own ``add`` until it returns or is blocked (the
``/proc`` check above); then P goes on, and the counter must have grown by
both deltas. P and Q repeat this for k = 1, 2, ... until P's ``add`` runs
out of line events, so every line of the call is a place where Q has
tried to get in. A correct ``add`` makes Q wait whenever P paused while
holding the counter's lock; one that reads, then writes, without it loses
Q's update when P paused between its read and its write.

Limits. Line granularity: P pauses before a source line, never between the
bytecodes of one line (and C code, such as the semaphore's own acquire,
has no lines). The previous trace function (coverage.py's, say) is saved
and restored around the call, so that call's lines are not measured.
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: A probe's states: the task has not announced; it announced that it is
#: about to call the operation; it got past it.
IDLE, ANNOUNCED, PASSED = 0, 1, 2

#: Seconds an observer waits for a probed process to block or get past its
#: operation before it gives up loudly (a correct run takes milliseconds).
PATIENCE = 60.0

CAN_SEE_BLOCKED = sys.platform.startswith("linux") and os.path.isdir("/proc/self/task")
WHY_NOT = "needs Linux /proc to see that a child process is blocked (see tests/interleave.py)"


def process_state(pid: int) -> tuple[str, int]:
    """The scheduler state letter of process ``pid`` (``R``, ``S``, ``D``,
    ``Z``, ...) and its number of threads, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # The command name (field 2) is in parentheses and may hold spaces.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[17])


def _poll(done: Callable[[], bool], what: str) -> None:
    """Wait until ``done()`` is true, looking again and again (sleeping a
    little between looks, so the observed process gets the CPU)."""
    deadline = time.monotonic() + PATIENCE
    pause = 0.0
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {PATIENCE} s waiting until {what}")
        time.sleep(pause)
        pause = min(0.001, pause + 0.0001)


class ProcessProbe:
    """Tells an observer whether a task of the processes runtime is blocked
    in an operation, or got past it.

    The probed task calls :meth:`announce` right before the operation and
    :meth:`passed` right after it; an observer in another process calls
    :meth:`wait_blocked`. Lives in shared memory (made by the parent, passed
    to tasks as an argument); every method may be called from any process.
    """

    def __init__(self, context: Any) -> None:
        self._pid = context.RawValue("q", 0)
        self._state = context.RawValue("q", IDLE)

    @property
    def state(self) -> int:
        return int(self._state.value)

    def announce(self) -> None:
        """Probed task: about to call the operation (no system call)."""
        self._pid.value = os.getpid()
        self._state.value = ANNOUNCED

    def passed(self) -> None:
        """Probed task: the operation returned (or raised)."""
        self._state.value = PASSED

    def reset(self) -> None:
        """Before the probed task announces again (one probe, many rounds)."""
        self._state.value = IDLE

    def wait_blocked(self) -> bool:
        """Observer: wait until the probed task announced and is now blocked
        in the operation (True) or got past it (False)."""
        result: list[bool] = []

        def settled() -> bool:
            state = self.state
            if state == PASSED:
                result.append(False)
                return True
            if state != ANNOUNCED:
                return False
            if self._blocked(int(self._pid.value)):
                result.append(True)
                return True
            return False

        _poll(settled, "the probed process blocks or gets past its operation")
        return result[0]

    def _blocked(self, pid: int) -> bool:
        """Is process ``pid``, which announced, blocked in the operation now?"""
        try:
            letter, threads = process_state(pid)
        except FileNotFoundError:  # exited: it must have got past
            return False
        if threads != 1:
            raise AssertionError(
                f"process {pid} runs {threads} threads: its state says nothing about where it waits"
            )
        return letter == "S"


class RedisProbe(ProcessProbe):
    """A probe for the redis runtime's tasks: there a process sleeps in the
    kernel at every round trip to the server, so ``S`` says nothing.
    Blocked means what the server says instead: the process's connection
    is blocked in a blocking command (``CLIENT LIST`` flag ``b``), which
    critsec issues only to wait for a hand-over."""

    def __init__(self, context: Any, url: str) -> None:
        super().__init__(context)
        self._url = url

    def _blocked(self, pid: int) -> bool:
        import redis

        from critsec.runtimes._redis_client import client_name

        with redis.Redis.from_url(self._url) as client:
            return any(
                entry["name"] == client_name(pid) and "b" in entry["flags"]
                for entry in client.client_list()
            )


# -- pausing inside counter.add ----------------------------------------------------------


class AddControl:
    """The shared state of :func:`add_at_every_line`'s two processes."""

    def __init__(self, context: Any, other: ProcessProbe) -> None:
        self.turn = context.Semaphore(0)  # P paused (or finished): Q's turn
        self.done = context.Semaphore(0)  # Q's add returned
        self.stop = context.RawValue("q", 0)  # P ran out of line events
        self.other = other  # Q, around its add


@dataclass(frozen=True)
class Round:
    """One pause: P paused at its ``k``-th line event inside ``add``, at
    ``where``; the counter before and after both adds; whether Q was
    blocked (True) or got through its ``add`` (False) while P paused."""

    k: int
    where: str
    before: int
    after: int
    other_blocked: bool


def _call_pausing(
    fn: Callable[..., Any], args: tuple[Any, ...], k: int, pause: Callable[[str], None]
) -> bool:
    """Call ``fn(*args)``; at its k-th line event (in ``fn`` or anything it
    calls) call ``pause(where)`` first. True if it paused."""
    seen = 0
    paused = False

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        nonlocal seen, paused
        if event == "line" and not paused:
            seen += 1
            if seen == k:
                paused = True
                code = frame.f_code
                pause(f"{os.path.basename(code.co_filename)}:{frame.f_lineno} ({code.co_name})")
        return local

    def on_call(frame: types.FrameType, event: str, arg: Any) -> Any:
        return local

    previous = sys.gettrace()
    sys.settrace(on_call)  # this frame is not traced: only the call's own frames
    try:
        fn(*args)
    finally:
        sys.settrace(previous)
    return paused


def pausing_adder(counter: Any, ctl: AddControl, delta: int) -> list[Round]:
    """Task P: ``counter.add(delta)`` again and again, pausing at line event
    k = 1, 2, ... while task Q adds; returns what each round saw."""
    rounds: list[Round] = []
    seen: list[tuple[str, bool]] = []

    def pause(where: str) -> None:
        ctl.other.reset()
        ctl.turn.release()  # Q: add now
        seen.append((where, ctl.other.wait_blocked()))

    k = 1
    while True:
        before = counter.value
        seen.clear()
        if not _call_pausing(counter.add, (delta,), k, pause):
            ctl.stop.value = 1
            ctl.turn.release()
            return rounds
        ctl.done.acquire()  # Q's add returned (at once, or after P's)
        where, blocked = seen[0]
        rounds.append(Round(k, where, before, counter.value, blocked))
        k += 1


def interloping_adder(counter: Any, ctl: AddControl, delta: int) -> int:
    """Task Q: one ``counter.add(delta)`` each time P pauses; returns how many."""
    n = 0
    while True:
        ctl.turn.acquire()
        if ctl.stop.value:
            return n
        ctl.other.announce()
        counter.add(delta)
        ctl.other.passed()
        ctl.done.release()
        n += 1


def add_at_every_line(rt: Any, counter: Any, timeout: float = 60) -> list[Round]:
    """Run P (adds 1) and Q (adds 2) on ``rt`` (the processes or redis
    runtime), Q trying its ``add`` at every line of P's; return the rounds."""
    import critsec

    other = RedisProbe(rt.context, rt.url) if rt.name == "redis" else ProcessProbe(rt.context)
    ctl = AddControl(rt.context, other)
    rounds, interloped = rt.run(
        critsec.task(pausing_adder, counter, ctl, 1),
        critsec.task(interloping_adder, counter, ctl, 2),
        timeout=timeout,
    )
    assert interloped == len(rounds)
    return list(rounds)
