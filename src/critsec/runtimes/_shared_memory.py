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

  Speed: a ``put`` with room or a ``get`` with an item (the usual case)
  takes a fast path -- lock, copy in or out, commit, unlock, one C call
  (``_robust.FastPath``) on the same memory -- that wakes nobody unless
  someone waits (a wake-up zeroes the count of waiters,
  who count themselves again if they must wait again); only a call that
  must wait runs the shared algorithm of :mod:`._core`. A waiter, and a
  contended lock, spin for some microseconds before sleeping in the
  kernel, as the other side is usually about to be done.
  ``put_many``/``get_many`` move a batch under one lock and one wake-up.

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
import os
import pickle
import struct
import threading
import weakref
from collections.abc import Iterable
from multiprocessing import sharedctypes
from typing import Any, Generic, NamedTuple, TypeVar

from .._errors import Full, ShutDown
from . import _robust
from ._core import (
    ALL_DONE,
    NOT_EMPTY,
    NOT_FULL,
    BlockingQueue,
    Steps,
    check_counter_value,
    check_maxsize,
    check_timeout,
    time_left,
)

__all__ = [
    "AT_LEAST_ONCE",
    "AT_MOST_ONCE",
    "DEFAULT_BUFFER_SIZE",
    "Delivery",
    "ProcessCounter",
    "ProcessLock",
    "ProcessQueue",
]

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

# Each item in the ring: its pickled length and its id, then the pickle.
_HEADER = struct.Struct("=QQ")
# Slots of the queue's state (each of its two copies).
_HEAD = 0  # byte offset of the oldest undelivered item's header
_USED = 1  # bytes taken from the ring (headers included)
_COUNT = 2  # undelivered items in the ring
_UNFINISHED = 3  # items put and not yet marked done
_SHUTDOWN = 4  # 1 once shut down
_RECLAIM = 5  # byte offset of the oldest record whose bytes are still needed
_PENDING = 6  # bytes of delivered records not yet reclaimed (at-least-once)
_NEXT_ID = 7  # the id the next put gives its item
_READY = 8  # taken items whose taker died: delivered again before the ring's
_FIXED_SLOTS = 9
# At-least-once delivery: then a taken item keeps its bytes and a slot
# until its taker acknowledges it (task_done) -- or dies.
_OWNER_PID, _OWNER_TID, _OWNER_START, _ID, _DELIVERIES, _OFFSET = range(6)
_SLOT = 6  # fields per slot; _OWNER_PID 0: a free slot, -1: ready to deliver again
_CONDITIONS = (NOT_EMPTY, NOT_FULL, ALL_DONE)
# The C fast path (_robust.FastPath) reads and writes the same state: one layout.
_LAYOUT = dict(head=_HEAD, used=_USED, count=_COUNT, unfinished=_UNFINISHED, shutdown=_SHUTDOWN)
_LAYOUT.update(reclaim=_RECLAIM, pending=_PENDING, next_id=_NEXT_ID, ready=_READY)
if {name: i for i, name in enumerate(_robust.QUEUE_STATE)} != _LAYOUT:  # pragma: no cover
    raise ImportError("critsec.runtimes._robust numbers the queue's state otherwise: rebuild it")

#: Whether new queues run their fast path (a put with room, a get with an
#: item, nobody to wake) in C, as one call (``_robust.FastPath``), or in
#: Python (:class:`_PythonFastPath`: the same steps; tests run both). A queue
#: keeps its choice, in every process it is passed to.
FAST_PATH_IN_C = True

#: Delivery modes of a processes queue.
AT_MOST_ONCE, AT_LEAST_ONCE = "at-most-once", "at-least-once"
DELIVERIES = (AT_MOST_ONCE, AT_LEAST_ONCE)


class Delivery(NamedTuple, Generic[T]):
    """An item as ``get_delivery()`` hands it out: the item, its id (given
    by ``put``, the same on every delivery) and how many times it has been
    delivered, this time included (1 the first time; more when a taker
    died before ``task_done()``)."""

    item: T
    id: int
    deliveries: int


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if it
    is gone -- a zombie counts as gone: it will never acknowledge."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return None if fields[0] in (b"Z", b"X") else int(fields[19])


class _Me(threading.local):
    """This thread, as an owner of taken items: (pid, thread id, start time
    of its process) -- the start time tells a reused pid from its first owner."""

    pid = 0

    def who(self) -> tuple[int, int, int]:
        pid = os.getpid()
        if self.pid != pid:
            self.pid, self.tid = pid, threading.get_native_id()
            self.start = _start_time(pid) or 0
        return self.pid, self.tid, self.start


_me = _Me()
#: The at-least-once queues alive in this process, for run() to tell them
#: that a task process ended (its taken items are then delivered again).
_redelivering: weakref.WeakSet[ProcessQueue[Any]] = weakref.WeakSet()


def redeliver_from_the_dead() -> None:
    """Give the items that dead processes took (and did not acknowledge)
    back to every at-least-once queue of this process, waking getters."""
    for queue in list(_redelivering):
        queue.reclaim()


class _QueueMemory(ctypes.Structure):
    """Everything of a queue but its ring, in one block of shared memory."""

    _fields_ = [
        ("mutex", _MutexMemory),
        # Per condition: a futex word bumped by every wake-up, and how many
        # wait since the last wake-up (a hint that spares a system call when
        # none do; a waiter that died stays counted until the next wake-up,
        # which costs only that call).
        ("sequence", ctypes.c_uint32 * len(_CONDITIONS)),
        ("waiters", ctypes.c_uint32 * len(_CONDITIONS)),
        ("active", ctypes.c_int64),  # which copy of the state is the committed one
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
            if memory.sequence[i] == sequence:  # not woken (time out, signal): still counted
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
        memory = self.queue._memory
        memory.sequence[self.index] += 1  # ctypes wraps it at 2**32, as it should
        # Every waiter counted is woken now, and counts itself again if it
        # must wait again: until then, operations need not wake anyone.
        memory.waiters[self.index] = 0
        _robust.futex_wake(self.queue._addresses[self.index], 2**31 - 1)


class _PythonFastPath:
    """The queue's fast path in Python: what ``_robust.FastPath`` does in C,
    with the same protocol. ``put(data)`` locks and, if there is room and
    nothing unusual, puts, wakes the getters only if some wait (as counted
    in ``waiters``), commits and unlocks: True. ``get()`` likewise takes an
    item: ``(item, (id, deliveries))``. Otherwise (shut down, full, empty,
    the last holder died) they return False / None *with the mutex held*,
    and the caller goes on with ``_begin()`` and the shared algorithm."""

    __slots__ = ("queue", "waiters")

    def __init__(self, queue: ProcessQueue[Any], waiters: Any) -> None:
        self.queue, self.waiters = queue, waiters

    def put(self, data: bytes) -> bool:
        queue = self.queue
        mutex = queue._mutex_
        mutex.__enter__()
        if mutex.owner_died:
            return False  # the caller's _begin recovers
        try:
            queue._begin()
            state = queue._local
            if state[_SHUTDOWN] or queue._full(data):
                return False
            queue._put(data)
            state[_UNFINISHED] += 1
            if self.waiters[0]:  # NOT_EMPTY
                queue._notify(NOT_EMPTY)
            queue._commit()
        except BaseException:
            mutex.release()
            raise
        mutex.release()
        return True

    def get(self) -> tuple[bytes, tuple[int, int]] | None:
        queue = self.queue
        mutex = queue._mutex_
        mutex.__enter__()
        if mutex.owner_died:
            return None
        try:
            queue._begin()
            if not queue._available():
                return None  # _available changed nothing it returns False for
            data = queue._get()
            if self.waiters[1]:  # NOT_FULL
                queue._notify(NOT_FULL)
            queue._commit()
        except BaseException:
            mutex.release()
            raise
        mutex.release()
        return data, queue._last


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
    nothing behind.

    **Delivery.** With ``delivery="at-most-once"`` (the default, as
    ``queue.Queue``), an item a consumer took and had not finished with
    dies with it, and stays counted in ``unfinished_tasks`` (so ``join()``
    would wait for it). With ``delivery="at-least-once"``, a taken item is
    only *lent* to the thread that took it until that thread calls
    ``task_done()`` (its acknowledgement; ``task_done`` from a thread that
    holds no item raises ``ValueError``); if the taker's process dies
    first, the item is delivered again, before any other, to the next
    getter. ``get_delivery()`` tells which delivery it is, so a consumer
    can detect a duplicate (an item processed, then its consumer killed
    before ``task_done``). At most ``in_flight`` items are lent at a time
    (a getter waits for an acknowledgement past that), and their bytes
    stay in the buffer until acknowledged. A death is noticed at once in
    a ``run`` (the runtime tells the queue when a task process ends), and
    otherwise when a getter finds nothing it can take.
    """

    def __init__(
        self,
        maxsize: float = 0,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        delivery: str = AT_MOST_ONCE,
        in_flight: int = 64,
    ) -> None:
        self.maxsize = check_maxsize(maxsize)
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
            raise TypeError(f"buffer_size must be an int, got {type(buffer_size).__name__}")
        if buffer_size <= _HEADER.size:
            raise ValueError(f"buffer_size must be > {_HEADER.size} bytes, got {buffer_size}")
        if delivery not in DELIVERIES:
            raise ValueError(
                f"delivery must be one of {', '.join(map(repr, DELIVERIES))}, got {delivery!r}"
            )
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
            raise ValueError(f"in_flight must be an int >= 1, got {in_flight!r}")
        self.buffer_size = buffer_size
        self.delivery = delivery
        self._slots = in_flight if delivery == AT_LEAST_ONCE else 0
        self._ring = _shared_bytes(buffer_size)
        self._memory = _shared(_QueueMemory)
        self._state = sharedctypes.RawArray("q", 2 * (_FIXED_SLOTS + _SLOT * self._slots))
        _robust.Mutex(self._memory.mutex, create=True)
        self._fast_in_c = FAST_PATH_IN_C and not self._slots
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
        self._size = _FIXED_SLOTS + _SLOT * self._slots
        # The two copies of the state, loaded and stored by one struct call each.
        self._words = memoryview(self._state).cast("B")
        self._copy = struct.Struct(f"{self._size}q")
        self._local: list[int] = [0] * self._size
        self._loaded: list[int] = self._local
        self._last: tuple[int, int] = (0, 0)  # (id, count) of the last item _get took
        self._fast = self._fast_path(memory.waiters)
        if self._slots:
            _redelivering.add(self)

    def _fast_path(
        self, waiters: Any, wakes: int = 2**31 - 1
    ) -> _robust.FastPath | _PythonFastPath:
        """The fast path's handle, reading who waits in ``waiters`` (the
        queue's own counts) and waking ``wakes`` of them (all) -- the
        mutation check (tests/mutants.py) passes others. In Python, wake-ups
        are ``_notify``'s."""
        if not self._fast_in_c:  # at-least-once lends items: Python does that
            return _PythonFastPath(self, waiters)
        memory = self._memory
        base = ctypes.addressof(memory)
        return _robust.FastPath(
            self._mutex_,
            (self._ring, memory, self._state, waiters),
            state=ctypes.addressof(self._state),
            words=self._size,
            ring=ctypes.addressof(self._ring),
            ring_size=self.buffer_size,
            active=base + _QueueMemory.active.offset,
            sequence=base + _QueueMemory.sequence.offset,
            waiters=ctypes.addressof(waiters),
            maxsize=self.maxsize,
            wakes=wakes,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        names = (
            *("maxsize", "buffer_size", "delivery", "_slots", "_fast_in_c"),
            *("_ring", "_memory", "_state"),
        )
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
        self._loaded = list(self._copy.unpack_from(self._words, memory.active * self._copy.size))
        self._local = self._loaded.copy()

    def _commit(self) -> None:
        """Publish ``_local``, if it changed, with one 8-byte store."""
        if self._local != self._loaded:
            memory = self._memory
            other = 1 - memory.active
            self._copy.pack_into(self._words, other * self._copy.size, *self._local)
            memory.active = other  # the commit
            self._loaded = self._local.copy()

    def _drive_held(self, steps: Steps[Any]) -> Any:
        """``_drive`` after a fast path declined: the mutex is held already
        (its state not loaded yet); commit unless an exception escapes, and
        unlock."""
        mutex = self._mutex_
        try:
            self._begin()
            result = self._drive_locked(steps)
            self._commit()
        finally:
            mutex.release()
        return result

    def _committed(self, slot: int) -> int:
        """A slot of the committed state, read without the mutex."""
        return int(self._state[self._memory.active * self._size + slot])

    # -- pickling outside the mutex; a fast path when nobody must wait ---------
    def _dumps(self, item: T) -> bytes:
        data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        if _HEADER.size + len(data) > self.buffer_size:
            raise ValueError(
                f"item pickles to {len(data)} bytes; it can never fit in this queue's "
                f"buffer of {self.buffer_size} bytes (make the queue with a larger buffer_size)"
            )
        return data

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item``; if the queue is full or its buffer lacks room, wait
        (at most ``timeout`` seconds). Raises :class:`~critsec.Full` if
        ``block`` is false or the time ran out, :class:`~critsec.ShutDown`
        if the queue is or gets shut down, ``ValueError`` if the pickled
        item is larger than the whole buffer, and whatever ``pickle``
        raises for an item it cannot pickle."""
        data = self._dumps(item)
        if block and timeout is not None:
            check_timeout(block, timeout)  # a bad timeout raises first, as on the slow path
        if not self._put_now(data):  # declined, the mutex held: as the shared algorithm says
            self._drive_held(self._put_steps(data, block, timeout))

    def _put_now(self, data: bytes) -> bool:
        """The fast path of a put: what _put_steps does when there is room,
        without its generator, and with a wake-up only if a getter waits.
        False: it declined (shut down, full, a death to recover from) and
        changed nothing, and the mutex is held."""
        return self._fast.put(data)

    def put_many(
        self, items: Iterable[T], block: bool = True, timeout: float | None = None
    ) -> None:
        """``put`` each of ``items`` in turn -- as many as there is room for
        under one acquisition of the mutex and with one wake-up, so a batch
        costs little more than one item. ``timeout`` bounds the whole call.
        If it raises (``Full``, ``ShutDown``), the items before the one that
        could not go in did. Every item is pickled (and checked against the
        buffer's size) before the first goes in."""
        payloads = [self._dumps(item) for item in items]
        error = self._drive(self._put_many_steps(payloads, block, timeout))
        if error is not None:
            raise error

    def _put_many_steps(
        self, payloads: list[bytes], block: bool, timeout: float | None
    ) -> Steps[type[Exception] | None]:
        # Returns Full/ShutDown instead of raising them: what went in before
        # must be committed, and an exception escaping _drive commits nothing.
        deadline = check_timeout(block, timeout)
        done = 0
        if payloads and self._is_shutdown:
            return ShutDown
        while done < len(payloads):
            went = done
            while done < len(payloads) and not self._full(payloads[done]):
                self._put(payloads[done])
                done += 1
            if done > went:
                self._unfinished += done - went
                self._notify(NOT_EMPTY)  # wakes every getter: once is enough
                if done == len(payloads):
                    break
            left = time_left(deadline)
            if not block or (left is not None and left <= 0):
                return Full
            yield NOT_FULL, left
            if self._is_shutdown:
                return ShutDown
        return None

    def _get_now(self) -> tuple[bytes, tuple[int, int]] | None:
        """The fast path of a get: what _get_steps does when an item can be
        taken at once, without its generator, and with a wake-up only if a
        putter waits. None: it declined (empty, a death to recover from)
        and changed nothing, and the mutex is held."""
        return self._fast.get()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item; wait for one if empty (at most
        ``timeout`` seconds). Raises :class:`~critsec.Empty` if ``block`` is
        false or the time ran out, :class:`~critsec.ShutDown` once shut down
        and drained. An item that cannot be unpickled here (its class is
        not importable in this process) is removed, and the error raised."""
        item: T = pickle.loads(self._get_one(block, timeout)[0])
        return item

    def get_delivery(self, block: bool = True, timeout: float | None = None) -> Delivery[T]:
        """``get()``, saying which item it is and which delivery: a
        :class:`Delivery` ``(item, id, deliveries)``; ``deliveries`` is above 1 when
        the item was taken before by a consumer that died without
        ``task_done()`` (at-least-once delivery)."""
        data, (ident, count) = self._get_one(block, timeout)
        return Delivery(pickle.loads(data), ident, count)

    def _get_one(self, block: bool, timeout: float | None) -> tuple[bytes, tuple[int, int]]:
        if block and timeout is not None:
            check_timeout(block, timeout)  # a bad timeout raises first, as on the slow path
        got = self._get_now()
        if got is None:  # declined, the mutex held: as the shared algorithm says
            got = self._drive_held(self._get_many_steps(1, block, timeout))[0]
        return got

    def get_many(
        self, most: int, block: bool = True, timeout: float | None = None
    ) -> list[Delivery[T]]:
        """Up to ``most`` items at once, oldest first, as :class:`Delivery`
        records -- under one acquisition of the mutex, with one wake-up.
        Waits (at most ``timeout`` seconds) only while the queue is empty,
        then returns what there is; ``Empty``/``ShutDown`` as ``get``. Each
        item counts for ``task_done`` as if taken by ``get`` (at-least-once,
        each is lent until acknowledged, and a getter takes no more than
        the free ``in_flight`` slots). The items are unpickled after they
        are removed: one that cannot be unpickled here loses the batch."""
        if isinstance(most, bool) or not isinstance(most, int) or most < 1:
            raise ValueError(f"most must be a positive int, got {most!r}")
        got = self._drive(self._get_many_steps(most, block, timeout))
        return [Delivery(pickle.loads(data), ident, count) for data, (ident, count) in got]

    def _get_many_steps(
        self, most: int, block: bool, timeout: float | None
    ) -> Steps[list[tuple[bytes, tuple[int, int]]]]:
        # The first item as get takes it (waits, Empty, ShutDown and the
        # wake-up of every waiting putter included); the rest while there
        # are any, under the same mutex: that one wake-up covers them.
        first = yield from self._get_steps(block, timeout)
        got = [(first, self._last)]  # _last read under the mutex, as _get left it
        while len(got) < most and self._available():
            got.append((self._get(), self._last))
        if self._slots:
            # Oldest first, by id: a dead taker's item found ready mid-batch
            # may be older than the ones before it, and task_done acknowledges
            # the oldest item held -- so the batch is processed in that order.
            got.sort(key=lambda taken: taken[1][0])
        return got

    # -- storage: a ring of (length, id, pickle) records -------------------------
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

    def _record(self, offset: int) -> tuple[int, bytes, int]:
        """The record at ``offset``: its size in the ring, its item, its id."""
        start = offset + _HEADER.size
        if start <= self.buffer_size:  # the header in one piece (most records)
            n, ident = _HEADER.unpack_from(self._view, offset)
            if start + n <= self.buffer_size:  # and the item too
                return _HEADER.size + n, self._view[start : start + n].tobytes(), ident
        else:
            n, ident = _HEADER.unpack(self._read(offset, _HEADER.size))
        return _HEADER.size + n, self._read(start % self.buffer_size, n), ident

    def _qsize(self) -> int:
        return self._local[_COUNT] + self._local[_READY]

    def _put(self, item: bytes) -> None:
        # The bytes go where no committed state looks yet: until the commit
        # they are invisible, so a death here loses only this put.
        state = self._local
        ident = state[_NEXT_ID]
        state[_NEXT_ID] = ident + 1
        tail = (state[_RECLAIM] + state[_USED]) % self.buffer_size
        start, end = tail + _HEADER.size, tail + _HEADER.size + len(item)
        if end <= self.buffer_size:  # in one piece (most records): no concatenation
            _HEADER.pack_into(self._view, tail, len(item), ident)
            self._view[start:end] = item
        else:
            self._write(tail, _HEADER.pack(len(item), ident) + item)
        state[_USED] += _HEADER.size + len(item)
        state[_COUNT] += 1

    def _take(self) -> tuple[int, int, bytes, int]:
        """Take the oldest undelivered record off the ring: its offset, its
        size in the ring, its item, its id."""
        state = self._local
        head = state[_HEAD]
        size, item, ident = self._record(head)
        state[_COUNT] -= 1
        state[_HEAD] = (head + size) % self.buffer_size
        state[_PENDING] += size
        return head, size, item, ident

    def _get(self) -> bytes:
        state = self._local
        if not self._slots:  # at-most-once: the bytes are free at once
            _, size, item, ident = self._take()
            self._free(size)
            self._last = (ident, 1)
            return item
        i = self._ready_slot()
        if i is not None:  # a dead taker's item, delivered again before any other
            state[_READY] -= 1
            _, item, ident = self._record(state[i + _OFFSET])
        else:
            free = self._free_slot()
            assert free is not None, "_available() promised a free slot"
            i = free
            offset, _, item, ident = self._take()
            state[i + _ID], state[i + _OFFSET], state[i + _DELIVERIES] = ident, offset, 0
        state[i + _OWNER_PID : i + _OWNER_START + 1] = _me.who()
        state[i + _DELIVERIES] += 1
        self._last = (ident, state[i + _DELIVERIES])
        return item

    def _reclaim(self) -> None:
        """Free the ring bytes of delivered records that no slot still needs,
        oldest first (a lent item holds its bytes, and those after it)."""
        state = self._local
        lent = {state[i + _OFFSET] for i in self._slot_range() if state[i + _OWNER_PID]}
        while state[_PENDING] and state[_RECLAIM] not in lent:
            n, _ = _HEADER.unpack(self._read(state[_RECLAIM], _HEADER.size))
            self._free(_HEADER.size + n)

    def _free(self, size: int) -> None:
        """Give the ring back the oldest delivered record, ``size`` bytes."""
        state = self._local
        state[_RECLAIM] = (state[_RECLAIM] + size) % self.buffer_size
        state[_PENDING] -= size
        state[_USED] -= size
        if not state[_USED]:
            # Empty: start over at the front, so a queue whose consumers keep
            # up only ever touches its first pages and rarely wraps.
            state[_HEAD] = state[_RECLAIM] = 0

    # -- at-least-once: lent items, acknowledgements, the dead ------------------
    def _slot_range(self) -> range:
        return range(_FIXED_SLOTS, self._size, _SLOT)

    def _free_slot(self) -> int | None:
        state = self._local
        return next((i for i in self._slot_range() if not state[i + _OWNER_PID]), None)

    def _ready_slot(self) -> int | None:
        """The slot of the oldest item a dead taker held, if there is one."""
        state = self._local
        if not state[_READY]:
            return None
        ready = (i for i in self._slot_range() if state[i + _OWNER_PID] == -1)
        return min(ready, key=lambda i: state[i + _ID])

    def _available(self) -> bool:
        state = self._local
        if not self._slots:
            return bool(state[_COUNT])
        if state[_READY] or (state[_COUNT] and self._free_slot() is not None):
            return True
        # Nothing to take: perhaps because a taker died.
        return self._redeliver()

    def _drained(self) -> bool:
        if self._slots:
            self._redeliver()
        return not self._qsize()

    def _redeliver(self) -> bool:
        """Make the items of dead takers ready to be delivered again; True
        if some are ready now."""
        state, found = self._local, False
        for i in self._slot_range():
            pid = state[i + _OWNER_PID]
            if pid > 0 and _start_time(pid) != state[i + _OWNER_START]:
                state[i + _OWNER_PID : i + _OWNER_START + 1] = (-1, 0, 0)
                state[_READY] += 1
                found = True
        if found:
            self._notify(NOT_EMPTY)
        return bool(state[_READY])

    def _task_done(self) -> None:
        if self._slots:
            state, me = self._local, list(_me.who())
            mine = [
                i for i in self._slot_range() if state[i + _OWNER_PID : i + _OWNER_START + 1] == me
            ]
            if not mine:
                raise ValueError(
                    "task_done() from a thread that holds no item: with at-least-once "
                    "delivery, the thread that took an item acknowledges it"
                )
            i = min(mine, key=lambda i: state[i + _ID])
            state[i : i + _SLOT] = [0] * _SLOT
            self._reclaim()
            self._notify(NOT_EMPTY)  # a getter may wait for a free slot
            self._notify(NOT_FULL)  # and a putter for the bytes
        super()._task_done()

    def _discard(self) -> None:
        state = self._local
        i = self._ready_slot()
        if i is not None:
            state[i : i + _SLOT] = [0] * _SLOT
            state[_READY] -= 1
        else:
            self._take()
        self._reclaim()

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

    def reclaim(self) -> int:
        """At-least-once: make the items that dead takers held deliverable
        again now, waking getters; return how many are waiting to be
        delivered again. ``run()`` calls it whenever a task process ends; a
        program that starts and kills its own processes calls it after a
        death (otherwise it happens when a getter finds nothing to take)."""
        with self._mutex:
            self._redeliver()
            return self._local[_READY]

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
            f"<ProcessQueue maxsize={self.maxsize} "
            f"qsize={self._committed(_COUNT) + self._committed(_READY)} "
            f"buffer_size={self.buffer_size} delivery={self.delivery!r}>"
        )
