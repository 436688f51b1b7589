"""The processes runtime's primitives: shared memory that survives a death.

Design
------
The lesson's process example shares its counter through a
``multiprocessing.Manager``: every ``counter.value`` is a round trip to a
server process (about 117 µs here, a hundred times the cost of shared
memory). critsec keeps all shared state in shared memory instead, and
makes it robust: **a process may die at any instruction -- killed, crashed,
``os._exit`` -- and every primitive it touched stays usable by the others.**
The standard library's do not: a ``multiprocessing.Lock`` whose holder
dies stays locked for good, and so do the semaphores inside a
``multiprocessing.Queue`` or ``Condition`` a process died in.

* **The lock** is a POSIX *robust*, process-shared mutex in shared memory
  (:mod:`critsec.runtimes._robust`). The kernel knows who holds it; when
  the holder dies, the kernel hands the mutex to the next acquirer at once
  (tens of microseconds, no polling), who is told: its ``acquire()``
  returns True as usual and ``lock.owner_died`` is True until its next
  acquire. The data the lock protects may be half-updated: check, repair,
  go on. Unlike ``threading.Lock``, the lock has an owner: only the thread
  that holds it may release it (another thread gets ``RuntimeError``).
* **The counter** is an int64 in shared memory; ``add`` is one atomic
  instruction (compare-and-swap), so there is no lock to leave held and a
  death leaves the value either with or without that add.
* **The queue** keeps its items pickled in a byte ring buffer of shared
  memory, and its bookkeeping (where the items are, how many, how many
  unfinished, shut down or not) in two copies: an operation works on a
  private copy of the state and *commits* it in a single 8-byte store that
  selects the other copy, just before releasing the queue's robust mutex.
  A process that dies inside an operation therefore leaves it either done
  or not begun, never half-done. Waiting uses futexes (a sequence number
  per condition): a waiter that dies holds nothing, and every waiter is
  woken before the commit, so a waiter woken by a process that then died
  finds the mutex handed on by the kernel instead of sleeping forever. A
  wake-up wakes every waiter of that condition (they re-check; the
  standard library's ``notify()`` wakes one, which a death could lose).
  There is no feeder thread (unlike ``multiprocessing.Queue``), so
  ``qsize()`` is exact, ``put`` returns once the item is in the queue, and
  items from several producers come out in one order.

What a death loses: the item a consumer had taken with ``get`` and not yet
finished with (unless the queue redelivers it, see ``at-least-once``); a
``put`` that had not committed; the update the lock's holder was making.
Nothing else, and nobody is left blocked.

All three are passed to tasks as arguments: under ``fork`` the child
inherits them; under ``spawn``/``forkserver`` they are pickled with the
task (``multiprocessing`` allows that only while starting a process, so
they cannot travel through a queue or a pipe). The memory comes from
``multiprocessing``'s heap, whose files are unlinked as soon as they are
created, so nothing is left in ``/dev/shm`` however a run ends; there are
no named semaphores to leak.
"""

from __future__ import annotations

import ctypes
import functools
import pickle
import struct
from multiprocessing import sharedctypes
from typing import Any, Generic, TypeVar

from . import _robust
from ._core import (
    ALL_DONE,
    NOT_EMPTY,
    NOT_FULL,
    BlockingQueue,
    check_counter_value,
    check_maxsize,
)

__all__ = ["DEFAULT_BUFFER_SIZE", "ProcessCounter", "ProcessLock", "ProcessQueue"]

#: Bytes of shared memory behind a queue unless told otherwise. Generous,
#: and cheap: pages are only given memory when first written to, and the
#: ring starts over at its front whenever it is empty.
DEFAULT_BUFFER_SIZE = 16 * 1024 * 1024

T = TypeVar("T")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _shared(ctype: Any) -> Any:
    """A zeroed instance of ``ctype`` in shared memory, picklable to children."""
    return sharedctypes.RawValue(ctype)


def _shared_bytes(size: int) -> ctypes.Array[ctypes.c_ubyte]:
    """``size`` bytes of shared memory, their pages not yet touched."""
    # RawArray(typecode, size) zero-fills the array, which makes the kernel
    # give memory to every page at once; the ring never reads a byte it did
    # not write, so allocate the way RawArray does, minus that fill.
    new_value = getattr(sharedctypes, "_new_value", None)
    if new_value is None:  # pragma: no cover - a future Python without it
        return sharedctypes.RawArray(ctypes.c_ubyte, size)
    return new_value(ctypes.c_ubyte * size)  # type: ignore[no-any-return]


# A mutex's bytes, as int64s so that ctypes aligns them.
_MutexMemory = ctypes.c_int64 * -(-_robust.MUTEX_SIZE // 8)


# -- the lock ------------------------------------------------------------------


def _rebuild_lock(cls: type[ProcessLock], memory: Any) -> ProcessLock:
    lock = cls.__new__(cls)
    _robust.Mutex.__init__(lock, memory)
    return lock


class ProcessLock(_robust.Mutex):
    """A lock shared by processes, with ``threading.Lock``'s interface, that
    survives the death of its holder.

    ``acquire(blocking=True, timeout=-1)`` blocks the calling thread only;
    ``release()`` must be called by the thread that holds the lock
    (``RuntimeError`` otherwise, and for a lock that is not held).
    ``locked()`` says whether some thread holds it. Not reentrant (a thread
    that acquires twice waits for itself, as with ``threading.Lock``); not
    FIFO-fair (the kernel picks among waiters).

    **When the holder dies** (a process killed or exited, a thread ended,
    while holding it), the next acquirer gets the lock within microseconds
    and ``owner_died`` is True for it: whatever the lock protects may be
    half-updated. ``owner_died`` is reset by the next acquire that finds a
    live owner's release::

        with lock:
            if lock.owner_died:
                repair(shared_state)
            update(shared_state)
    """

    def __init__(self) -> None:
        super().__init__(_shared(_MutexMemory), create=True)

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_lock, (type(self), self._memory)

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
    (the lesson). ``add(delta)`` is atomic (one compare-and-swap) and
    returns the new value. Any process that received the counter may call
    either; neither blocks, and a process that dies in the middle of
    either leaves the value as it was or with its change, never anything
    else. Values outside the int64 range raise ``OverflowError`` instead of
    wrapping around.
    """

    def __init__(self, initial: int = 0) -> None:
        self._raw = sharedctypes.RawValue("q", _check_int64(check_counter_value(initial)))

    @functools.cached_property
    def _address(self) -> int:
        # Per process: under spawn the memory is mapped at another address.
        return ctypes.addressof(self._raw)

    def __getstate__(self) -> dict[str, Any]:
        return {"_raw": self._raw}

    @property
    def value(self) -> int:
        return int(self._raw.value)

    @value.setter
    def value(self, new: int) -> None:
        self._raw.value = _check_int64(check_counter_value(new))

    def add(self, delta: int) -> int:
        """Atomically add ``delta``; return the new value."""
        if type(delta) is not int:
            check_counter_value(delta)
        try:
            return _robust.add(self._address, delta)
        except OverflowError:
            raise OverflowError(
                f"{self.value} + {delta} is outside a process counter's int64 range"
            ) from None

    def __repr__(self) -> str:
        return f"<ProcessCounter value={self.value}>"


# -- the queue -----------------------------------------------------------------

# Each item in the ring: its pickled length, then the pickle.
_HEADER = struct.Struct("=Q")
# Slots of the queue's state (each of its two copies).
_HEAD = 0  # byte offset of the oldest item's header
_USED = 1  # bytes taken by items (headers included)
_COUNT = 2  # items in the queue
_UNFINISHED = 3  # items put and not yet marked done
_SHUTDOWN = 4  # 1 once shut down
_STATE_SLOTS = 5
_CONDITIONS = (NOT_EMPTY, NOT_FULL, ALL_DONE)


class _QueueMemory(ctypes.Structure):
    """Everything of a queue but its ring, in one block of shared memory."""

    _fields_ = [
        ("mutex", _MutexMemory),
        # Per condition: a futex word bumped by every wake-up, and how many
        # wait (a hint that spares a system call when none do; a waiter
        # that died stays counted, which costs only that call).
        ("sequence", ctypes.c_uint32 * len(_CONDITIONS)),
        ("waiters", ctypes.c_uint32 * len(_CONDITIONS)),
        ("active", ctypes.c_int64),  # which copy of the state is the committed one
        ("state", ctypes.c_int64 * (2 * _STATE_SLOTS)),
        ("recoveries", ctypes.c_int64),  # operations a death interrupted
    ]


class _Section:
    """The queue's mutex as a transaction: entering loads the committed
    state into ``queue._local``; leaving commits it (unless an exception
    escapes: then nothing happened) and unlocks."""

    __slots__ = ("queue",)

    def __init__(self, queue: ProcessQueue[Any]) -> None:
        self.queue = queue

    def __enter__(self) -> None:
        queue = self.queue
        queue._mutex_.__enter__()
        queue._begin()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        queue = self.queue
        if exc_type is None:
            queue._commit()
        queue._mutex_.release()


class _Condition:
    """One condition of the queue, on a futex: ``wait`` commits, unlocks,
    sleeps until a wake-up (or the time runs out), locks and reloads."""

    __slots__ = ("index", "queue")

    def __init__(self, queue: ProcessQueue[Any], index: int) -> None:
        self.queue, self.index = queue, index

    @property
    def waiters(self) -> int:
        """Threads waiting on this condition (including any that died waiting)."""
        return int(self.queue._memory.waiters[self.index])

    def wait(self, timeout: float | None) -> None:
        queue, i = self.queue, self.index
        memory = queue._memory
        sequence = memory.sequence[i]
        memory.waiters[i] += 1
        queue._commit()
        queue._mutex_.release()
        try:
            _robust.futex_wait(queue._addresses[i], sequence, timeout)
        finally:
            queue._mutex_.__enter__()
            memory.waiters[i] -= 1
            queue._begin()

    def notify(self) -> None:
        if self.queue._memory.waiters[self.index]:
            self.wake()

    # Every wake-up wakes all: the one notify() would pick could die before
    # it reacts, and the others would sleep on.
    notify_all = notify

    def wake(self) -> None:
        """Wake every thread waiting on this condition."""
        self.queue._memory.sequence[self.index] += 1  # ctypes wraps it at 2**32, as it should
        _robust.futex_wake(self.queue._addresses[self.index], 2**31 - 1)


def _rebuild_queue(cls: type[ProcessQueue[Any]], state: dict[str, Any]) -> ProcessQueue[Any]:
    queue = cls.__new__(cls)
    queue.__dict__.update(state)
    queue._attach()
    return queue


class ProcessQueue(BlockingQueue[Any], Generic[T]):
    """A FIFO queue shared by processes: ``queue.Queue``'s interface, with
    Python 3.13's ``shutdown()`` on every Python, that survives the death
    of any process using it.

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

    A process that dies inside a queue operation leaves it done or not
    begun (``recoveries`` counts such deaths); one that dies waiting leaves
    nothing behind. An item a consumer took and had not finished with dies
    with it, and stays counted in ``unfinished_tasks`` (so ``join()`` would
    wait for it: use ``shutdown(immediate=True)`` or at-least-once delivery).
    """

    def __init__(self, maxsize: float = 0, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        self.maxsize = check_maxsize(maxsize)
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
            raise TypeError(f"buffer_size must be an int, got {type(buffer_size).__name__}")
        if buffer_size <= _HEADER.size:
            raise ValueError(f"buffer_size must be > {_HEADER.size} bytes, got {buffer_size}")
        self.buffer_size = buffer_size
        self._ring = _shared_bytes(buffer_size)
        self._memory = _shared(_QueueMemory)
        _robust.Mutex(self._memory.mutex, create=True)
        self._attach()

    def _attach(self) -> None:
        """This process's handles on the shared memory (not pickled)."""
        memory = self._memory
        self._mutex_ = _robust.Mutex(memory.mutex)
        self._mutex = _Section(self)
        base = ctypes.addressof(memory) + _QueueMemory.sequence.offset
        self._addresses = [base + 4 * i for i in range(len(_CONDITIONS))]
        self._conditions = {name: _Condition(self, i) for i, name in enumerate(_CONDITIONS)}
        self._view = memoryview(self._ring).cast("B")
        self._local: list[int] = [0] * _STATE_SLOTS
        self._loaded: list[int] = self._local

    def __reduce__(self) -> tuple[Any, ...]:
        names = ("maxsize", "buffer_size", "_ring", "_memory")
        return _rebuild_queue, (type(self), {name: self.__dict__[name] for name in names})

    # -- the transaction -------------------------------------------------------
    def _begin(self) -> None:
        """Just locked: recover if a death interrupted the last holder, and
        load the committed state."""
        memory = self._memory
        if self._mutex_.owner_died:
            # Its operation was not committed (or was, and only the unlock
            # was left): the state is whole either way. Wake everyone, who
            # might be waiting for what it would have done.
            memory.recoveries += 1
            for condition in self._conditions.values():
                condition.wake()
        start = memory.active * _STATE_SLOTS
        self._loaded = memory.state[start : start + _STATE_SLOTS]
        self._local = self._loaded.copy()

    def _commit(self) -> None:
        """Publish ``_local``, if it changed, with one 8-byte store."""
        if self._local != self._loaded:
            memory = self._memory
            other = 1 - memory.active
            start = other * _STATE_SLOTS
            memory.state[start : start + _STATE_SLOTS] = self._local
            memory.active = other  # the commit
            self._loaded = self._local.copy()

    def _committed(self, slot: int) -> int:
        """A slot of the committed state, read without the mutex."""
        memory = self._memory
        return int(memory.state[memory.active * _STATE_SLOTS + slot])

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
        return self._local[_COUNT]

    def _put(self, item: bytes) -> None:
        # The bytes go where no committed state looks yet: until the commit
        # they are invisible, so a death here loses only this put.
        state, size = self._local, self.buffer_size
        self._write((state[_HEAD] + state[_USED]) % size, _HEADER.pack(len(item)) + item)
        state[_USED] += _HEADER.size + len(item)
        state[_COUNT] += 1

    def _get(self) -> bytes:
        state, size = self._local, self.buffer_size
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
        # Room for its bytes too. A putter waiting for bytes is woken like
        # one waiting for a slot: every wake-up wakes all, who re-check.
        return _HEADER.size + len(item) > self.buffer_size - self._local[_USED]

    # -- the state behind QueueCore's counters ---------------------------------
    @property
    def _unfinished(self) -> int:
        return self._local[_UNFINISHED]

    @_unfinished.setter
    def _unfinished(self, value: int) -> None:
        self._local[_UNFINISHED] = value

    @property
    def _is_shutdown(self) -> bool:
        return bool(self._local[_SHUTDOWN])

    @_is_shutdown.setter
    def _is_shutdown(self, value: bool) -> None:
        self._local[_SHUTDOWN] = int(value)

    # -- read without the mutex --------------------------------------------------
    @property
    def is_shutdown(self) -> bool:
        """True once ``shutdown()`` was called."""
        return bool(self._committed(_SHUTDOWN))

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done."""
        return self._committed(_UNFINISHED)

    @property
    def recoveries(self) -> int:
        """How many times a process died inside an operation of this queue
        (each found whole by the next one, done or not begun)."""
        return int(self._memory.recoveries)

    def __repr__(self) -> str:
        return (
            f"<ProcessQueue maxsize={self.maxsize} qsize={self._committed(_COUNT)} "
            f"buffer_size={self.buffer_size}>"
        )
