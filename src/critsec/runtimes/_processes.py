"""The processes runtime: real processes sharing memory, no manager.

Design
------
The lesson's process example shares its counter through a
``multiprocessing.Manager``: every ``counter.value`` is a round trip to a
server process (about 117 µs here, a hundred times the cost of shared
memory). critsec keeps all shared state in shared memory instead and
synchronises with the operating system's semaphores:

* the lock is a ``multiprocessing`` lock (a POSIX semaphore), given
  ``threading.Lock``'s interface and errors;
* the counter is an int64 in shared memory (``RawValue``) with a lock of
  its own for ``add``;
* the queue is :class:`~critsec.runtimes._core.BlockingQueue` -- the one
  queue algorithm every runtime shares -- driven by a ``multiprocessing``
  lock and conditions. Items are pickled into a byte ring buffer in shared
  memory; its offsets and counters are an int64 array beside it. There is
  no feeder thread (unlike ``multiprocessing.Queue``), so ``qsize()`` is
  exact, ``put`` returns once the item is in the queue, and items from
  several producers come out in one order (the order their ``put`` took
  the queue's mutex).

All three are passed to tasks as arguments: under ``fork`` the child
inherits them; under ``spawn``/``forkserver`` they are pickled with the
task (``multiprocessing`` allows that only while starting a process, so
they cannot travel through a queue or a pipe); a primitive works only
with tasks of the runtime (start method) that made it. Shared memory comes
from ``multiprocessing``'s heap, whose files are unlinked as soon as they
are created, so none is left behind however a run ends. Under ``spawn``
and ``forkserver`` semaphores have names (children open them by name);
they are unlinked when their primitive is collected, or by
``multiprocessing``'s resource tracker if the program dies first.

Start methods
-------------
``fork`` is the fastest and passes anything, but forking a process that
runs other threads may deadlock the child (it inherits locks held by
threads that do not exist there); Python 3.12+ warns about it with a
``DeprecationWarning``. Use ``spawn`` or ``forkserver`` in a program with
threads: tasks and their arguments must then be picklable (module-level
functions, not lambdas or nested functions).

Limits
------
A process killed while it holds a lock, or while it is inside a queue
operation, leaves that primitive locked or its waiters stranded -- as with
any ``multiprocessing`` primitive. ``run`` kills tasks only when the run is
over (a task failed, the time ran out, Ctrl-C): do not reuse primitives
those tasks were using.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import pickle
import signal
import struct
import time
from collections.abc import Iterator
from multiprocessing import resource_tracker, sharedctypes
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from .._outcome import Outcome, collect
from .._protocols import Lock, Queue
from .._runtime import Runtime
from .._task import Task, check_result
from ._core import (
    NOT_FULL,
    BlockingQueue,
    check_counter_value,
    check_lock_args,
    check_maxsize,
)

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "ProcessCounter",
    "ProcessLock",
    "ProcessQueue",
    "ProcessesRuntime",
]

#: Bytes of shared memory behind a queue unless told otherwise. Generous,
#: and cheap: pages are only given memory when first written to, and the
#: ring starts over at its front whenever it is empty.
DEFAULT_BUFFER_SIZE = 16 * 1024 * 1024

T = TypeVar("T")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Seconds a finished (or terminated) child may take to exit before it is killed.
_GRACE = 2.0


def _context(context: BaseContext | None) -> BaseContext:
    return multiprocessing.get_context() if context is None else context


# -- the lock ------------------------------------------------------------------


class ProcessLock:
    """A lock shared by processes, with ``threading.Lock``'s interface.

    Any process (or thread) that received it may call any method; the
    holder need not be the one that releases it, as with
    ``threading.Lock``. ``acquire`` blocks the calling thread only. Not
    reentrant; not FIFO-fair (the operating system picks among waiters).
    """

    def __init__(self, *, context: BaseContext | None = None) -> None:
        self._lock = _context(context).Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, waiting for it unless ``blocking`` is false, at
        most ``timeout`` seconds if one is given (``-1``: no limit).

        Returns whether it was taken. Arguments are checked as by
        ``threading.Lock.acquire``: ``ValueError`` for a timeout with
        ``blocking=False`` or a negative timeout other than ``-1``.
        """
        check_lock_args(blocking, timeout)
        if not blocking:
            return self._lock.acquire(False)
        return self._lock.acquire(True, None if timeout == -1 else timeout)

    def release(self) -> None:
        """Release the lock; never blocks. ``RuntimeError`` if it is not held."""
        try:
            self._lock.release()
        except ValueError:  # multiprocessing's word for it; threading says:
            raise RuntimeError("release unlocked lock") from None

    def locked(self) -> bool:
        """True while some process holds the lock (may change at once)."""
        return bool(self._lock._semlock._is_zero())  # type: ignore[attr-defined]

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<ProcessLock {'locked' if self.locked() else 'unlocked'}>"


# -- the counter ---------------------------------------------------------------


def _check_int64(value: int) -> int:
    # ctypes would silently wrap a value that does not fit.
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError(f"{value} is outside a process counter's int64 range")
    return value


class ProcessCounter:
    """An int64 shared by processes, in shared memory.

    ``value`` reads or writes it; ``counter.value += 1`` is a read then a
    write and is *not* atomic: two processes doing it at once lose updates
    (the lesson). ``add(delta)`` is atomic (it holds an internal process
    lock) and returns the new value. Any process that received the counter
    may call either; only ``add`` blocks, briefly. Values outside the int64
    range raise ``OverflowError`` instead of wrapping around.
    """

    def __init__(self, initial: int = 0, *, context: BaseContext | None = None) -> None:
        ctx = _context(context)
        self._raw = ctx.RawValue("q", _check_int64(check_counter_value(initial)))
        self._lock = ctx.Lock()

    @property
    def value(self) -> int:
        return int(self._raw.value)

    @value.setter
    def value(self, new: int) -> None:
        self._raw.value = _check_int64(check_counter_value(new))

    def add(self, delta: int) -> int:
        """Atomically add ``delta``; return the new value."""
        check_counter_value(delta)
        with self._lock:
            new = _check_int64(self._raw.value + delta)
            self._raw.value = new
            return new

    def __repr__(self) -> str:
        return f"<ProcessCounter value={self.value}>"


# -- the queue -----------------------------------------------------------------

# Each item in the ring: its pickled length, then the pickle.
_HEADER = struct.Struct("=Q")
# Slots of the queue's shared int64 state array.
_HEAD = 0  # byte offset of the oldest item's header
_USED = 1  # bytes taken by items (headers included)
_COUNT = 2  # items in the queue
_UNFINISHED = 3  # items put and not yet marked done
_SHUTDOWN = 4  # 1 once shut down
_SHORT_OF_ROOM = 5  # 1 when a putter found too few free bytes (see _notify)
_STATE_SLOTS = 6


def _shared_bytes(size: int) -> ctypes.Array[ctypes.c_ubyte]:
    """``size`` bytes of shared memory, their pages not yet touched."""
    # RawArray(typecode, size) zero-fills the array, which makes the kernel
    # give memory to every page at once; the ring never reads a byte it did
    # not write, so allocate the way RawArray does, minus that fill.
    new_value = getattr(sharedctypes, "_new_value", None)
    if new_value is None:  # pragma: no cover - a future Python without it
        return sharedctypes.RawArray(ctypes.c_ubyte, size)
    return new_value(ctypes.c_ubyte * size)  # type: ignore[no-any-return]


class ProcessQueue(BlockingQueue[Any], Generic[T]):
    """A FIFO queue shared by processes: ``queue.Queue``'s interface, with
    Python 3.13's ``shutdown()`` on every Python.

    Any process that received the queue may call any method (threads of
    one process too); ``put``/``get``/``join`` block the calling thread
    only. Items are pickled by ``put`` in the caller and unpickled by
    ``get`` in the caller, outside the queue's mutex; in between they are
    bytes in a ring buffer of ``buffer_size`` bytes of shared memory.

    So a queue is bounded twice: by ``maxsize`` items (0: no bound), and
    by its buffer. An item that does not fit in the free bytes waits like
    an item for a full queue -- an "unbounded" queue blocks its putters
    when the buffer is full, like a pipe -- and an item whose pickle is
    larger than the whole buffer raises ``ValueError`` at once. ``full()``
    reports the ``maxsize`` bound only. ``qsize()`` is exact at the
    instant it is called; there is no feeder thread and nothing to flush.
    """

    def __init__(
        self,
        maxsize: float = 0,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        context: BaseContext | None = None,
    ) -> None:
        self.maxsize = check_maxsize(maxsize)
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
            raise TypeError(f"buffer_size must be an int, got {type(buffer_size).__name__}")
        if buffer_size <= _HEADER.size:
            raise ValueError(f"buffer_size must be > {_HEADER.size} bytes, got {buffer_size}")
        self.buffer_size = buffer_size
        ctx = _context(context)
        self._ring = _shared_bytes(buffer_size)
        self._state = ctx.RawArray("q", _STATE_SLOTS)
        self._init_sync(ctx.Lock(), ctx.Condition)

    # -- pickling outside the mutex --------------------------------------------
    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item``; if the queue is full or its buffer lacks room, wait
        (at most ``timeout`` seconds). Raises :class:`~critsec.Full` if
        ``block`` is false or the time ran out, :class:`~critsec.ShutDown`
        if the queue is or gets shut down, ``ValueError`` if the pickled
        item is larger than the whole buffer, and whatever ``pickle``
        raises for an item it cannot pickle."""
        data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        if _HEADER.size + len(data) > self.buffer_size:
            raise ValueError(
                f"item pickles to {len(data)} bytes; it can never fit in this queue's "
                f"buffer of {self.buffer_size} bytes (make the queue with a larger buffer_size)"
            )
        super().put(data, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item; wait for one if empty (at most
        ``timeout`` seconds). Raises :class:`~critsec.Empty` if ``block`` is
        false or the time ran out, :class:`~critsec.ShutDown` once shut down
        and drained. An item that cannot be unpickled here (its class is
        not importable in this process) is removed, and the error raised."""
        item: T = pickle.loads(super().get(block, timeout))
        return item

    # -- storage: a ring of (length, pickle) records ---------------------------
    @functools.cached_property
    def _view(self) -> memoryview:
        # Made on first use in each process: a memoryview cannot be pickled.
        return memoryview(self._ring).cast("B")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_view", None)
        return state

    def _write(self, offset: int, data: bytes) -> None:
        first = min(len(data), self.buffer_size - offset)
        self._view[offset : offset + first] = data[:first] if first < len(data) else data
        if first < len(data):  # wraps around the end of the ring
            self._view[: len(data) - first] = data[first:]

    def _read(self, offset: int, n: int) -> bytes:
        first = min(n, self.buffer_size - offset)
        data = bytes(self._view[offset : offset + first])
        if first < n:
            data += self._view[: n - first]
        return data

    def _qsize(self) -> int:
        return int(self._state[_COUNT])

    def _put(self, item: bytes) -> None:
        state, size = self._state, self.buffer_size
        self._write((state[_HEAD] + state[_USED]) % size, _HEADER.pack(len(item)) + item)
        state[_USED] += _HEADER.size + len(item)
        state[_COUNT] += 1

    def _get(self) -> bytes:
        state, size = self._state, self.buffer_size
        head = state[_HEAD]
        (n,) = _HEADER.unpack(self._read(head, _HEADER.size))
        item = self._read((head + _HEADER.size) % size, n)
        state[_COUNT] -= 1
        if state[_COUNT]:
            state[_HEAD] = (head + _HEADER.size + n) % size
            state[_USED] -= _HEADER.size + n
        else:
            # Empty: start over at the front, so a queue whose consumers keep
            # up only ever touches its first pages and rarely wraps.
            state[_HEAD] = state[_USED] = 0
        return item

    def _full(self, item: bytes) -> bool:
        if super()._full(item):
            return True
        if _HEADER.size + len(item) > self.buffer_size - self._state[_USED]:
            self._state[_SHORT_OF_ROOM] = 1
            return True
        return False

    def _notify(self, condition: str, all: bool = False) -> None:
        if condition == NOT_FULL and self._state[_SHORT_OF_ROOM]:
            # Some putter waits for bytes, not for a slot: a get may free room
            # for several putters, or too little for the one notify() would
            # wake while another that fits sleeps on. Wake them all to
            # re-check; any still short of room raises the flag again.
            self._state[_SHORT_OF_ROOM] = 0
            all = True
        super()._notify(condition, all)

    # -- the shared state behind QueueCore's counters --------------------------
    @property
    def _unfinished(self) -> int:
        return int(self._state[_UNFINISHED])

    @_unfinished.setter
    def _unfinished(self, value: int) -> None:
        self._state[_UNFINISHED] = value

    @property
    def _is_shutdown(self) -> bool:
        return bool(self._state[_SHUTDOWN])

    @_is_shutdown.setter
    def _is_shutdown(self, value: bool) -> None:
        self._state[_SHUTDOWN] = int(value)

    def __repr__(self) -> str:
        return (
            f"<ProcessQueue maxsize={self.maxsize} qsize={self._qsize()} "
            f"buffer_size={self.buffer_size}>"
        )


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


def _child_main(t: Task, conn: Connection) -> None:
    """The body of each child process: run ``t``, send back how it ended."""
    # Ctrl-C in a terminal signals the whole process group; only the parent
    # should react (it stops its children). SIGINT was blocked while this
    # process started, so none can have slipped in before this line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _SIGMASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
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


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Hold SIGINT back from this thread, and from processes it starts."""
    # A child inherits the signal mask (through fork, and through exec for
    # spawn), so it starts with SIGINT blocked until _child_main ignores it.
    # A Ctrl-C meanwhile is delivered to the parent when this block ends.
    if not _SIGMASK:  # pragma: no cover - Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
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
        return ProcessLock(context=self.context)

    def counter(self, initial: int = 0) -> ProcessCounter:
        """A new :class:`ProcessCounter` holding ``initial``."""
        return ProcessCounter(initial, context=self.context)

    def queue(
        self, maxsize: float = 0, *, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> ProcessQueue[Any]:
        """A new :class:`ProcessQueue` of at most ``maxsize`` items (0: no
        bound) whose pickles share ``buffer_size`` bytes of shared memory."""
        return ProcessQueue(maxsize, buffer_size=buffer_size, context=self.context)

    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        children: list[_Child] = []
        if _SIGMASK and self.context.get_start_method() != "fork":
            # Starting multiprocessing's resource tracker (on a first spawn)
            # unblocks SIGINT as it ends; have it running before blocking.
            resource_tracker.ensure_running()
        try:
            for t in tasks:
                self._start(t, children)
            self._wait(children, deadline, timeout)
        finally:
            _stop(children)
        return collect([t.name for t in tasks], [child.outcome or Outcome() for child in children])

    def _start(self, t: Task, children: list[_Child]) -> None:
        """Start ``t`` in a new process and add it to ``children``."""
        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(  # type: ignore[attr-defined]
            target=_child_main, args=(t, writer), name=t.name
        )
        try:
            with _sigint_blocked():
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
                names = ", ".join(c.process.name for c in pending)
                raise TimeoutError(f"tasks still running after {timeout} s: {names}")
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
                    if child.outcome is None:
                        child.outcome = _death(child.process.exitcode)
            if any(c.outcome is not None and c.outcome.failed for c in children):
                # The others may be waiting for the failed one forever.
                return

    def __repr__(self) -> str:
        if self.start_method is None:
            return "critsec.runtime('processes')"
        return f"critsec.runtime('processes', start_method={self.start_method!r})"
