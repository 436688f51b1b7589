"""Every exception critsec raises, in one tree rooted at :class:`CritsecError`.

Where the standard library already has a name for a failure, critsec's
exception *is also* that name (multiple inheritance), so code written for
``queue.Queue`` or ``asyncio.Queue`` keeps working: ``except queue.Full``
catches :class:`Full` raised by any runtime, and so does
``except asyncio.QueueFull``.

Misuse of a primitive (releasing a lock that is not held, ``task_done()``
called too often) raises ``RuntimeError`` / ``ValueError`` exactly like the
standard library does, not a critsec exception: those are programming
errors, and users already know which class to expect.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CritsecError",
    "DeadlockError",
    "Empty",
    "Full",
    "LeaseExpired",
    "ServerUnreachable",
    "ShutDown",
    "StaleToken",
    "TaskError",
    "Wait",
    "deadlock_report",
]


class CritsecError(Exception):
    """Base class of every exception that critsec defines."""


class Full(CritsecError, queue.Full, asyncio.QueueFull):
    """A non-blocking put (or one whose timeout ran out) found the queue full.

    Is also ``queue.Full`` and ``asyncio.QueueFull``.
    """


class Empty(CritsecError, queue.Empty, asyncio.QueueEmpty):
    """A non-blocking get (or one whose timeout ran out) found the queue empty.

    Is also ``queue.Empty`` and ``asyncio.QueueEmpty``.
    """


# Python 3.13 added queue.ShutDown and asyncio.QueueShutDown; critsec gives the
# same semantics on every supported Python, and on 3.13+ its exception is also
# the standard one.
_shutdown_bases: tuple[type[BaseException], ...] = tuple(
    base
    for base in (getattr(queue, "ShutDown", None), getattr(asyncio, "QueueShutDown", None))
    if base is not None
)


class ShutDown(CritsecError, *_shutdown_bases):  # type: ignore[misc]
    """The queue was shut down: ``put`` always raises it afterwards; ``get``
    raises it once the queue is empty (at once after ``shutdown(immediate=True)``).

    Differs from :class:`Empty`: ``Empty`` means "nothing now, maybe later";
    ``ShutDown`` means "nothing ever again". On Python 3.13+ it is also
    ``queue.ShutDown`` and ``asyncio.QueueShutDown``.
    """


class LeaseExpired(CritsecError, RuntimeError):
    """A lease ran out before its holder was done with what it held: a
    redis lock released after its lease ended (renewals failed: the process
    was paused or cut off; the lock may have been granted to another since,
    with a larger fencing token), or an at-least-once item acknowledged
    after it was delivered again to another taker.

    Differs from the plain ``RuntimeError`` of releasing a lock nobody
    holds: this lock *was* held, and the hold was lost. Also a
    ``RuntimeError``, so code written for ``threading.Lock`` still catches it.
    """


class StaleToken(CritsecError, ValueError):
    """A fenced write carried a fencing token older than the newest one the
    resource has seen: its writer's lock lease ran out and the lock was
    granted again since, so the write is refused rather than allowed to
    undo the newer owner's work."""


class ServerUnreachable(CritsecError, ConnectionError):
    """The redis runtime's server did not answer (refused, reset, timed
    out). The operation that raised it may not have happened; nothing is
    retried behind the caller's back, since a retried operation could
    happen twice. Also a ``ConnectionError``."""


class TaskError(CritsecError):
    """A task run by ``Runtime.run`` raised an exception.

    ``task`` is the task's name, ``details`` the traceback text as the task
    saw it -- for the processes runtime, the child process's traceback. The
    original exception is ``__cause__`` whenever it could be brought back
    (a process's exception must survive pickling). ``others`` holds the
    errors of further tasks that failed in the same run.
    """

    def __init__(self, task: str, summary: str, details: str = "") -> None:
        super().__init__(f"task {task!r} failed: {summary}")
        self.task = task
        self.summary = summary
        self.details = details
        self.others: list[TaskError] = []

    def __str__(self) -> str:
        text = super().__str__()
        if self.details:
            text += "\n" + self.details.rstrip()
        if self.others:
            names = ", ".join(repr(other.task) for other in self.others)
            text += f"\n(also failed: {names})"
        return text


@dataclass(frozen=True)
class Wait:
    """One task of a deadlock: what it waits for, and where it waits (a
    ``file:line`` and that line's source; empty when unknown)."""

    task: str
    what: str
    where: str = ""
    source: str = ""


def deadlock_report(waits: Sequence[Wait]) -> tuple[str, str]:
    """The one way critsec words a deadlock -- in the coroutines runtime and
    in every explorer driver: a line naming who waits for what, and a
    line per task saying where."""
    line = "deadlock: no task can run: " + "; ".join(
        f"{w.task!r} waits for {w.what}" for w in waits
    )
    detail = "\n".join(
        f"task {w.task!r} waits for {w.what}" + (f" at {w.where}: {w.source}" if w.where else "")
        for w in waits
    )
    return line, detail


class DeadlockError(CritsecError):
    """Every unfinished task waits and nothing can wake any of them.

    Raised by schedulers that can see all waiters (the coroutines runtime).
    The message says which task waits for what, and where; ``waits`` holds
    the same as :class:`Wait` records.
    """

    def __init__(self, waits: Sequence[Wait]) -> None:
        line, detail = deadlock_report(waits)
        super().__init__(f"{line}\n{detail}")
        self.waits = tuple(waits)

    def __reduce__(self) -> tuple[type[DeadlockError], tuple[tuple[Wait, ...]]]:
        return type(self), (self.waits,)
