"""The processes runtime: real processes sharing memory, no manager.

Tasks are child processes, one per task. Their lock, counter and queue
live in shared memory and survive the death of any process using them
(:mod:`critsec.runtimes._shared_memory` says how); this module starts the
children, collects what each returned or raised, and stops them.

Start methods
-------------
``fork`` is the fastest and passes anything, but forking a process that
runs other threads may deadlock the child (it inherits locks held by
threads that do not exist there); Python 3.12+ warns about it with a
``DeprecationWarning``. Use ``spawn`` or ``forkserver`` in a program with
threads: tasks and their arguments must then be picklable (module-level
functions, not lambdas or nested functions). Primitives work with tasks
of any start method.

Endings
-------
``run`` stops its tasks when the run is over for any reason (a task
failed, the time ran out, Ctrl-C). Primitives those tasks were using stay
usable, by the parent and by a following run: a lock a stopped task held
is handed on (``owner_died``), a queue operation it was inside is done or
not begun.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Iterator
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from .._outcome import Outcome, collect, overdue
from .._protocols import Lock, Queue
from .._runtime import Runtime
from .._task import Task, check_result
from ._children import die_with_parent
from ._shared_memory import (
    AT_MOST_ONCE,
    DEFAULT_BUFFER_SIZE,
    ProcessCounter,
    ProcessLock,
    ProcessQueue,
    redeliver_from_the_dead,
)

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "ProcessCounter",
    "ProcessLock",
    "ProcessQueue",
    "ProcessesRuntime",
]

# Seconds a finished (or terminated) child may take to exit before it is killed.
_GRACE = 2.0


# -- running tasks -------------------------------------------------------------

_OK, _FAILED = "ok", "failed"
_SIGMASK = hasattr(signal, "pthread_sigmask")  # POSIX


def _failure_message(exc: BaseException, prefix: str = "") -> bytes:
    """What a child sends for a task that failed: the exception if it pickles,
    and its text either way (the text always gets through)."""
    outcome = Outcome.failure(exc)
    try:
        error: bytes | None = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
    except Exception:  # e.g. an attribute that cannot be pickled
        error = None
    return pickle.dumps((_FAILED, error, prefix + outcome.summary, outcome.details))


def _child_main(t: Task, conn: Connection, parent: int) -> None:
    """The body of each child process: run ``t``, send back how it ended."""
    die_with_parent(parent)
    # Ctrl-C in a terminal signals the whole process group; only the parent
    # should react (it stops its children). SIGTERM is how the parent stops
    # a task: it must end the process, whatever handler a forked child
    # inherited (the `critsec` command's, which would raise in the task, or
    # print a traceback from multiprocessing's start-up code). A Python
    # SIGHUP handler is the parent's business too; an ignored one stays
    # ignored (nohup). These signals were blocked while this process
    # started, so none can have slipped in before this line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if callable(signal.getsignal(signal.SIGHUP)):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if _SIGMASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD_BACK)
    try:
        value = check_result(t.name, t.call())
    except BaseException as exc:  # reported to the caller of run()
        message = _failure_message(exc)
    else:
        try:
            message = pickle.dumps((_OK, value), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            message = _failure_message(exc, "its return value cannot be sent to the parent: ")
    conn.send_bytes(message)
    conn.close()


def _receive(reader: Connection) -> Outcome | None:
    """A child's report, or None if it closed its pipe without one."""
    try:
        data = reader.recv_bytes()
    except (EOFError, OSError):  # died before, or while, sending
        return None
    try:
        message = pickle.loads(data)
    except Exception as exc:
        summary = Outcome.failure(exc).summary
        return Outcome(summary=f"its return value cannot be unpickled in the parent: {summary}")
    if message[0] == _OK:
        return Outcome(value=message[1])
    _, pickled, summary, details = message
    try:
        error = None if pickled is None else pickle.loads(pickled)
    except Exception:  # pickled, but its class cannot be rebuilt here
        error = None
    return Outcome(error=error, summary=summary, details=details)


def _death(exitcode: int | None) -> Outcome:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"process exited with code {exitcode}"
    return Outcome(summary=how)


#: Signals held back while a child starts (see _signals_blocked).
_HELD_BACK = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back from this thread, and from the
    processes it starts."""
    # A child inherits the signal mask (through fork, and through exec for
    # spawn), so it starts with them blocked until _child_main has set its
    # own handlers. One sent meanwhile -- a Ctrl-C, the parent's terminate()
    # -- is delivered when the block ends: in the parent, to its handler; in
    # the child, to the child's own.
    if not _SIGMASK:  # pragma: no cover - Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_BACK)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Child:
    """A started task: its process, the pipe it reports on, its outcome."""

    def __init__(self, process: BaseProcess, reader: Connection) -> None:
        self.process = process
        self.reader = reader
        self.reader_open = True  # until its report (or EOF) was read
        self.outcome: Outcome | None = None  # None: not reported
        self.finished = False  # the process exited and its outcome is known


def _stop(children: list[_Child]) -> None:
    """Leave no child behind: stop those still running, wait for all."""
    for child in children:
        # A child that reported is on its way out (flushing its output):
        # let it finish; the others are stopped now.
        if child.outcome is None and child.process.exitcode is None:
            child.process.terminate()
    deadline = time.monotonic() + _GRACE
    for child in children:
        child.process.join(max(0.0, deadline - time.monotonic()))
        if child.process.exitcode is None:  # ignores SIGTERM, or stuck on its way out
            child.process.kill()
            child.process.join()
        child.reader.close()
        child.process.close()


class ProcessesRuntime(Runtime[Lock, Queue[Any]]):
    """Tasks are child processes, one per task; primitives live in shared
    memory and are passed to tasks as arguments.

    ``start_method`` is ``"fork"``, ``"spawn"``, ``"forkserver"`` or None
    for ``multiprocessing``'s default (``fork`` on Linux before Python
    3.14). ``fork`` is unsafe in a program running other threads (see the
    module docs); under ``spawn`` and ``forkserver`` tasks, their arguments
    and their return values must be picklable.
    """

    name = "processes"
    style = "blocking"

    def __init__(self, start_method: str | None = None) -> None:
        if start_method is not None and not isinstance(start_method, str):
            raise TypeError(
                f"start_method must be a str or None, got {type(start_method).__name__}"
            )
        valid = multiprocessing.get_all_start_methods()
        if start_method is not None and start_method not in valid:
            raise ValueError(
                f"unknown start_method {start_method!r}; valid start methods: "
                f"{', '.join(valid)} (or None for multiprocessing's default)"
            )
        self.start_method = start_method
        #: The ``multiprocessing`` context the runtime's processes and
        #: primitives come from (for an ``Event`` or ``Barrier`` of your own).
        self.context: BaseContext = multiprocessing.get_context(start_method)

    def lock(self) -> ProcessLock:
        """A new :class:`ProcessLock`, for this runtime's tasks."""
        return ProcessLock()

    def counter(self, initial: int = 0) -> ProcessCounter:
        """A new :class:`ProcessCounter` holding ``initial``."""
        return ProcessCounter(initial)

    def queue(
        self,
        maxsize: float = 0,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        delivery: str = AT_MOST_ONCE,
        in_flight: int = 64,
    ) -> ProcessQueue[Any]:
        """A new :class:`ProcessQueue` of at most ``maxsize`` items (0: no
        bound) whose pickles share ``buffer_size`` bytes of shared memory.
        ``delivery="at-least-once"`` delivers again an item whose taker died
        before ``task_done()`` (at most ``in_flight`` taken at a time)."""
        return ProcessQueue(
            maxsize, buffer_size=buffer_size, delivery=delivery, in_flight=in_flight
        )

    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        children: list[_Child] = []
        if _SIGMASK and self.context.get_start_method() != "fork":
            # Starting multiprocessing's resource tracker (on a first spawn)
            # unblocks SIGINT and SIGTERM as it ends; have it running before blocking.
            resource_tracker.ensure_running()
        try:
            for t in tasks:
                self._start(t, children)
            self._wait(children, deadline, timeout)
        finally:
            _stop(children)
            redeliver_from_the_dead()
        return collect([t.name for t in tasks], [child.outcome or Outcome() for child in children])

    def _start(self, t: Task, children: list[_Child]) -> None:
        """Start ``t`` in a new process and add it to ``children``."""
        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(  # type: ignore[attr-defined]
            target=_child_main, args=(t, writer, os.getpid()), name=t.name
        )
        try:
            with _signals_blocked():
                process.start()
                # Recorded before a held-back Ctrl-C can strike, or the child
                # would escape _stop (and the parent would hang at exit,
                # where multiprocessing joins every child).
                children.append(_Child(process, reader))
        except (pickle.PicklingError, TypeError, AttributeError, RuntimeError) as exc:
            reader.close()
            raise TypeError(
                f"task {t.name!r} cannot be sent to a process: {exc} (start method "
                f"{self.context.get_start_method()!r} pickles each task: use a "
                f"module-level function and picklable arguments)"
            ) from exc
        finally:
            # The child has its own copy; without ours, the pipe reports EOF
            # once the child is gone.
            writer.close()

    def _wait(self, children: list[_Child], deadline: float | None, timeout: float | None) -> None:
        """Collect reports until every child exited, one failed, or time ran out."""
        while pending := [c for c in children if not c.finished]:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise overdue(timeout, [c.process.name for c in pending])
            # Read reports while children run: a large return value fills
            # the pipe, and its child cannot exit until it is read.
            readers = [c.reader for c in pending if c.reader_open]
            ready = set(wait([*readers, *(c.process.sentinel for c in pending)], left))
            for child in pending:
                exited = child.process.sentinel in ready
                woken = exited or child.reader in ready
                if woken and child.reader_open and child.reader.poll():  # a report, or EOF
                    child.outcome = _receive(child.reader)
                    child.reader_open = False
                if exited:
                    child.process.join()
                    child.finished = True
                    # What it took from an at-least-once queue and did not
                    # acknowledge goes to the others now, not when one looks.
                    redeliver_from_the_dead()
                    if child.outcome is None:
                        child.outcome = _death(child.process.exitcode)
            if any(c.outcome is not None and c.outcome.failed for c in children):
                # The others may be waiting for the failed one forever.
                return

    def __repr__(self) -> str:
        if self.start_method is None:
            return "critsec.runtime('processes')"
        return f"critsec.runtime('processes', start_method={self.start_method!r})"
