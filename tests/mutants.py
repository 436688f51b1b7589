"""Broken primitives, to prove that the behavioural suite can see them.

A test that can only pass is a defect; the proof that each test of
``test_primitives.py`` can fail is that it does fail when a primitive is
broken in a way it is about. Each *mutant* here is one such break, written
for every runtime where it means something, in that runtime's style:

===========================  ====================================================
``lock-excludes-nothing``    acquire and release do nothing (acquire: True)
``add-read-then-write``      ``add(d)`` is ``new = value + d; value = new``
``queue-loses-1-in-100``     every hundredth put is silently dropped
``queue-duplicates-one``     one item is delivered twice
``shutdown-no-wake``         ``shutdown()`` wakes no blocked getter (putters yes)
``acquire-ignores-timeout``  ``acquire(blocking, timeout)`` waits as if -1
``lock-stuck-when-holder-dies``  the standard library's lock: a semaphore that
                             nobody releases when its holder dies
``queue-wakes-one``          a wake-up wakes one waiter (it may die before it acts)
``queue-forgets-the-dead``   at-least-once: a dead taker's item is never redelivered
``hands-to-the-dead``        redis: a hand-over goes to the first waiter, dead or alive
===========================  ====================================================

The last four are faults of the runtimes whose tasks can die alone
(processes, redis); ``tests/test_robust.py`` and ``tests/test_redis.py``
(real kills) are the part of the suite that sees them. On redis, most
breaks are made in the Lua scripts themselves (:class:`RedisScriptPatch`):
that is where its primitives' logic lives.

``activate(name)`` swaps the mutant into the public factories: it replaces
the runtime classes' ``lock()`` / ``counter()`` / ``queue()`` methods
(found as ``type(critsec.runtime(...))``) by ones that make the real
primitive and turn it into the broken one. ``tests/conftest.py`` does that
at import time when ``CRITSEC_MUTANT=<name>`` is set, and
``tests/mutation.py`` runs the suite once per mutant.

The broken classes subclass the real ones, found through the factories
(``type(rt.queue())``) rather than by their private names, and override
only public methods or the hooks of ``critsec.runtimes._core.QueueCore``
(``_put``, ``_get``, ``_notify``, ``_shutdown``), so they follow the real
classes through refactorings -- and, for the processes queue, the hooks
of its fast path, which runs in C without calling those (``_put_now``,
``_get_now``, and the ``waiters``/``wakes`` its ``_fast_path`` is made
with). ``threading.Lock`` cannot be subclassed: its mutants wrap one.
Every class is defined at module level, so that the processes runtime can
pickle them under ``spawn`` (the child imports this module to rebuild
them, without activating anything).

Where a mutant does not apply, :data:`MUTANTS` says why instead.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from collections.abc import Callable, Generator
from typing import Any, ClassVar

import critsec
from critsec.runtimes import _redis_scripts
from critsec.runtimes._core import NOT_EMPTY
from critsec.runtimes._redis import RedisCounter, RedisLock, RedisQueue
from critsec.runtimes._shared_memory import _READY

_THREADS: Any = critsec.runtime("threads")
_PROCESSES: Any = critsec.runtime("processes")
_COROUTINES: Any = critsec.runtime("coroutines")
_ASYNCIO: Any = critsec.runtime("asyncio")

# The real classes, as the factories make them.
_ThreadCounter: Any = type(_THREADS.counter())
_ThreadQueue: Any = type(_THREADS.queue())
_ProcessLock: Any = type(_PROCESSES.lock())
_ProcessCounter: Any = type(_PROCESSES.counter())
_ProcessQueue: Any = type(_PROCESSES.queue(1, buffer_size=64))
_CoroutineLock: Any = type(_COROUTINES.lock())
_CoroutineQueue: Any = type(_COROUTINES.queue())
_AsyncioLock: Any = type(_ASYNCIO.lock())
_AsyncioQueue: Any = type(_ASYNCIO.queue())


# -- lock-excludes-nothing -------------------------------------------------------------


class ThreadLockExcludingNothing:
    """A ``threading.Lock`` whose acquire and release do nothing."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        pass

    def locked(self) -> bool:
        return bool(self._real.locked())

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class ProcessLockExcludingNothing(_ProcessLock):  # type: ignore[misc]
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        pass

    # The real lock's `with` goes straight to C, past acquire and release.
    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class CoroutineLockExcludingNothing(_CoroutineLock):  # type: ignore[misc]
    def acquire(self, blocking: bool = True, timeout: float = -1) -> Generator[Any, None, bool]:
        return True
        yield  # a generator, as `yield from lock.acquire()` wants

    def release(self) -> None:
        pass

    def __enter__(self) -> None:
        pass


class AsyncioLockExcludingNothing(_AsyncioLock):  # type: ignore[misc]
    async def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


# -- acquire-ignores-timeout -----------------------------------------------------------


class ThreadLockIgnoringTimeout:
    """A ``threading.Lock`` whose blocking acquire waits as if timeout were -1."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self._real.acquire(blocking))

    def release(self) -> None:
        self._real.release()

    def locked(self) -> bool:
        return bool(self._real.locked())

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class ProcessLockIgnoringTimeout(_ProcessLock):  # type: ignore[misc]
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(super().acquire(blocking))


class CoroutineLockIgnoringTimeout(_CoroutineLock):  # type: ignore[misc]
    def acquire(self, blocking: bool = True, timeout: float = -1) -> Generator[Any, None, bool]:
        return (yield from super().acquire(blocking))  # type: ignore[no-any-return]


# -- add-read-then-write -----------------------------------------------------------------


class ThreadCounterReadingThenWriting(_ThreadCounter):  # type: ignore[misc]
    value: int

    def add(self, delta: int) -> int:
        new = self.value + delta
        self.value = new
        return int(new)


class ProcessCounterReadingThenWriting(_ProcessCounter):  # type: ignore[misc]
    value: int

    def add(self, delta: int) -> int:
        new = self.value + delta
        self.value = new
        return int(new)


# -- the queue mutants: QueueCore's hooks, the same on every runtime -----------------------
# Written once as functions, and made methods of a subclass of each runtime's
# queue (a mixin base would change the instances' layout, which __class__
# assignment refuses). ``super(type(self), self)``: the real queue's hook.


def losing_put(self: Any, item: Any) -> None:
    """Every hundredth ``_put`` (counted per queue, per process) drops its item."""
    self._puts = getattr(self, "_puts", 0) + 1
    if self._puts % 100:
        super(type(self), self)._put(item)


def duplicating_get(self: Any) -> Any:
    """The first ``_get`` (per queue, per process) also puts its item back
    at the end, so that it is delivered twice."""
    item = super(type(self), self)._get()
    if not getattr(self, "_duplicated", False):
        self._duplicated = True
        super(type(self), self)._put(item)
    return item


def shutdown_waking_no_getter(self: Any, immediate: bool) -> None:
    """``_shutdown`` sets the state and wakes putters, but no getter."""
    self._shutting_down = True
    try:
        super(type(self), self)._shutdown(immediate)
    finally:
        self._shutting_down = False


def notify_unless_shutting_down(self: Any, condition: str, all: bool = False) -> None:
    if getattr(self, "_shutting_down", False) and condition == NOT_EMPTY:
        return
    super(type(self), self)._notify(condition, all)


class ThreadQueueLosing(_ThreadQueue):  # type: ignore[misc]
    _put = losing_put


class ProcessQueueLosing(_ProcessQueue):  # type: ignore[misc]
    _put = losing_put

    def _put_now(self, data: bytes) -> bool:
        # The fast path (in C, where _put is not called) counts its puts
        # with _put's and drops every hundredth as if it had gone in.
        if (getattr(self, "_puts", 0) + 1) % 100 == 0:
            self._puts = getattr(self, "_puts", 0) + 1
            return True
        done: bool = super()._put_now(data)
        if done:
            self._puts = getattr(self, "_puts", 0) + 1
        return done


class CoroutineQueueLosing(_CoroutineQueue):  # type: ignore[misc]
    _put = losing_put


class AsyncioQueueLosing(_AsyncioQueue):  # type: ignore[misc]
    _put = losing_put


class ThreadQueueDuplicating(_ThreadQueue):  # type: ignore[misc]
    _get = duplicating_get


class ProcessQueueDuplicating(_ProcessQueue):  # type: ignore[misc]
    _get = duplicating_get

    def _get_now(self) -> Any:
        # The fast path (in C, where _get is not called): its first item
        # also goes back in at the end.
        got = super()._get_now()
        if got is not None and not getattr(self, "_duplicated", False):
            self._duplicated = True
            with self._mutex:
                self._put(got[0])
        return got


class CoroutineQueueDuplicating(_CoroutineQueue):  # type: ignore[misc]
    _get = duplicating_get


class AsyncioQueueDuplicating(_AsyncioQueue):  # type: ignore[misc]
    _get = duplicating_get


class ThreadQueueNotWaking(_ThreadQueue):  # type: ignore[misc]
    _shutdown = shutdown_waking_no_getter
    _notify = notify_unless_shutting_down


class ProcessQueueNotWaking(_ProcessQueue):  # type: ignore[misc]
    _shutdown = shutdown_waking_no_getter
    _notify = notify_unless_shutting_down


class CoroutineQueueNotWaking(_CoroutineQueue):  # type: ignore[misc]
    _shutdown = shutdown_waking_no_getter
    _notify = notify_unless_shutting_down


class AsyncioQueueNotWaking(_AsyncioQueue):  # type: ignore[misc]
    _shutdown = shutdown_waking_no_getter
    _notify = notify_unless_shutting_down


def mutated_fast_path(queue: Any, **how: Any) -> Any:
    """The queue's fast path (C or Python, as the queue's own), made by its
    ``_fast_path(**how)`` once per queue and process."""
    fast = queue.__dict__.get("_mutated_fast")
    if fast is None:  # not pickled: made again where a spawned child rebuilds the queue
        fast = queue.__dict__["_mutated_fast"] = queue._fast_path(**how)
    return fast


class ProcessQueueFastPathWakingNobody(_ProcessQueue):  # type: ignore[misc]
    """put and get skip the wake-up on their fast path (room or an item at
    once): they see nobody waiting (their count of waiters reads zeros).
    The slow path (the shared algorithm) still wakes, so only the fast
    path's own wake-up is broken."""

    def _blind(self) -> Any:
        return mutated_fast_path(self, waiters=(ctypes.c_uint32 * 3)())

    def _put_now(self, data: bytes) -> bool:
        return bool(self._blind().put(data))

    def _get_now(self) -> Any:
        return self._blind().get()


# -- the faults of a death (processes) ---------------------------------------------------


class ProcessLockStuckWhenHolderDies:
    """``multiprocessing.Lock`` in the processes lock's place: correct while
    nobody dies; a holder's death leaves it locked for good, and nobody is
    told (``owner_died`` is always False)."""

    owner_died = False

    def __init__(self, real: Any) -> None:
        # A spawn context's semaphore has a name, so spawned children can open it.
        self._sem = multiprocessing.get_context("spawn").Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            return bool(self._sem.acquire(False))
        return bool(self._sem.acquire(True, None if timeout == -1 else timeout))

    def release(self) -> None:
        try:
            self._sem.release()
        except ValueError:
            raise RuntimeError("release unlocked lock") from None

    def locked(self) -> bool:
        return bool(self._sem._semlock._is_zero())  # type: ignore[attr-defined]

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def waking_one(condition: Any) -> None:
    """A condition's wake-up that wakes one waiter, as ``Condition.notify``."""
    from critsec.runtimes import _robust

    queue = condition.queue
    queue._memory.sequence[condition.index] += 1
    _robust.futex_wake(queue._addresses[condition.index], 1)


class ProcessQueueWakingOne(_ProcessQueue):  # type: ignore[misc]
    def _notify(self, condition: str, all: bool = False) -> None:
        real = self._conditions[condition]
        if real.waiters:
            waking_one(real)

    def _one(self) -> Any:  # the fast path in C wakes one too (in Python, it calls _notify)
        return mutated_fast_path(self, waiters=self._memory.waiters, wakes=1)

    def _put_now(self, data: bytes) -> bool:
        return bool(self._one().put(data))

    def _get_now(self) -> Any:
        return self._one().get()


class ProcessQueueForgettingTheDead(_ProcessQueue):  # type: ignore[misc]
    def _redeliver(self) -> bool:
        return bool(self._local[_READY])  # what is ready stays so; nothing more becomes


_ALONE = "a task here cannot die alone: it shares its process with the others"
_NO_FAST_PATH = "no fast path of its own: every put and get wakes through _notify"


# -- redis: broken Python, and broken Lua -----------------------------------------------------


class RedisLockExcludingNothing(RedisLock):
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        pass


class RedisLockIgnoringTimeout(RedisLock):
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return super().acquire(blocking)


class RedisCounterReadingThenWriting(RedisCounter):
    def add(self, delta: int, *, token: int | None = None) -> int:
        new = self.value + delta
        self.value = new
        return new


class RedisQueueLosing(RedisQueue[Any]):
    # put_many: where every put goes (put and put_nowait are one-item batches).
    def put_many(self, items: Any, block: bool = True, timeout: float | None = None) -> None:
        kept = []
        for item in items:
            self._puts = getattr(self, "_puts", 0) + 1
            if self._puts % 100:
                kept.append(item)
        super().put_many(kept, block, timeout)


class RedisQueueDuplicating(RedisQueue[Any]):
    # _take: where every get goes (get, get_nowait, get_delivery, get_many).
    def _take(self, most: int, block: bool, timeout: float | None) -> Any:
        got = super()._take(most, block, timeout)
        if not getattr(self, "_duplicated", False):
            self._duplicated = True
            try:
                super().put_many([got[0].item], block=False)
            except critsec.Full:
                pass
        return got


#: script name -> (old Lua, new Lua) pairs.
Patches = dict[str, tuple[tuple[str, str], ...]]


class RedisScriptPatch:
    """Mixin: run the primitive's scripts with Lua text replaced
    (``PATCHES``: script name -> (old, new) pairs; each old text must be
    there, or the mutant would silently break nothing)."""

    PATCHES: ClassVar[Patches] = {}
    _registered: ClassVar[dict[tuple[int, str, str], Any]] = {}

    def _run(self, script: str, *args: Any) -> Any:
        patches = self.PATCHES.get(script)
        if not patches:
            return super()._run(script, *args)  # type: ignore[misc]
        sources = {"lock": _redis_scripts.LOCK, "queue": _redis_scripts.QUEUE}
        source = sources[self.kind][script]  # type: ignore[attr-defined]
        for old, new in patches:
            assert old in source, f"mutant patch not applicable to {script}: {old!r}"
            source = source.replace(old, new)
        connection = self._redis  # type: ignore[attr-defined]
        key = (os.getpid(), connection.url, source)
        if key not in self._registered:
            self._registered[key] = connection.client.register_script(source)
        with connection.errors():
            return self._registered[key](keys=[self._base], args=args)  # type: ignore[attr-defined]


class RedisQueueNotWaking(RedisScriptPatch, RedisQueue[Any]):
    PATCHES: ClassVar[Patches] = {"shutdown": (("wake_all('getters', 'shutdown')", ""),)}


_NO_LEASE = (
    ("redis.call('SET', k('owner'), who, 'PX', lease)", "redis.call('SET', k('owner'), who)"),
    ("ARGV[1], 'NX', 'PX', ARGV[2])", "ARGV[1], 'NX')"),  # the fast path
)


class RedisLockWithoutLease(RedisScriptPatch, RedisLock):
    """The owner key never expires (and a renewal gives it no expiry): a
    dead holder keeps the lock for good."""

    PATCHES: ClassVar[Patches] = {
        "acquire": _NO_LEASE,
        "release": _NO_LEASE[:1],
        "renew": (("redis.call('PEXPIRE', k('owner'), ARGV[2])", ""),),
    }


_TO_THE_DEAD = (("if alive(who, now) then return who end", "do return who end"),)


class RedisLockHandingToTheDead(RedisScriptPatch, RedisLock):
    PATCHES: ClassVar[Patches] = {"release": _TO_THE_DEAD}


class RedisQueueForgettingTheDead(RedisScriptPatch, RedisQueue[Any]):
    PATCHES: ClassVar[Patches] = {
        name: (("local function reap(now)\n", "local function reap(now)\n  do return 0 end\n"),)
        for name in ("get", "state", "reclaim")
    }


# -- the table ------------------------------------------------------------------------------

#: How a factory's product becomes the mutant: a class to turn it into
#: (a subclass of its own), or a function of it.
Change = type | Callable[[Any], Any]

#: mutant -> runtime -> (factory method, change), or the reason it does not apply.
MUTANTS: dict[str, dict[str, tuple[str, Change] | str]] = {
    "lock-excludes-nothing": {
        "threads": ("lock", ThreadLockExcludingNothing),
        "processes": ("lock", ProcessLockExcludingNothing),
        "coroutines": ("lock", CoroutineLockExcludingNothing),
        "asyncio": ("lock", AsyncioLockExcludingNothing),
        "redis": ("lock", RedisLockExcludingNothing),
    },
    "add-read-then-write": {
        "threads": ("counter", ThreadCounterReadingThenWriting),
        "processes": ("counter", ProcessCounterReadingThenWriting),
        "coroutines": "equivalent mutant: nothing can switch between the read and the write "
        "(no yield inside add)",
        "asyncio": "equivalent mutant: nothing can switch between the read and the write "
        "(no await inside add)",
        "redis": ("counter", RedisCounterReadingThenWriting),
    },
    "queue-loses-1-in-100": {
        "threads": ("queue", ThreadQueueLosing),
        "processes": ("queue", ProcessQueueLosing),
        "coroutines": ("queue", CoroutineQueueLosing),
        "asyncio": ("queue", AsyncioQueueLosing),
        "redis": ("queue", RedisQueueLosing),
    },
    "queue-duplicates-one": {
        "threads": ("queue", ThreadQueueDuplicating),
        "processes": ("queue", ProcessQueueDuplicating),
        "coroutines": ("queue", CoroutineQueueDuplicating),
        "asyncio": ("queue", AsyncioQueueDuplicating),
        "redis": ("queue", RedisQueueDuplicating),
    },
    "shutdown-no-wake": {
        "threads": ("queue", ThreadQueueNotWaking),
        "processes": ("queue", ProcessQueueNotWaking),
        "coroutines": ("queue", CoroutineQueueNotWaking),
        "asyncio": ("queue", AsyncioQueueNotWaking),
        "redis": ("queue", RedisQueueNotWaking),
    },
    "fast-path-wakes-nobody": {
        "threads": _NO_FAST_PATH,
        "processes": ("queue", ProcessQueueFastPathWakingNobody),
        "coroutines": _NO_FAST_PATH,
        "asyncio": _NO_FAST_PATH,
        "redis": "a Lua script puts or takes and hands over in one step: no path skips it",
    },
    "acquire-ignores-timeout": {
        "threads": ("lock", ThreadLockIgnoringTimeout),
        "processes": ("lock", ProcessLockIgnoringTimeout),
        "coroutines": ("lock", CoroutineLockIgnoringTimeout),
        "asyncio": "asyncio's lock takes no timeout (like asyncio.Lock): a timeout is "
        "asyncio.timeout() around acquire(), i.e. cancellation",
        "redis": ("lock", RedisLockIgnoringTimeout),
    },
    "lock-stuck-when-holder-dies": {
        "threads": _ALONE,
        "processes": ("lock", ProcessLockStuckWhenHolderDies),
        "coroutines": _ALONE,
        "asyncio": _ALONE,
        "redis": ("lock", RedisLockWithoutLease),
    },
    "queue-wakes-one": {
        "threads": _ALONE,
        "processes": ("queue", ProcessQueueWakingOne),
        "coroutines": _ALONE,
        "asyncio": _ALONE,
        "redis": "nothing is woken to race for an item: it is handed to one live waiter "
        "(hands-to-the-dead is the fault of that)",
    },
    "queue-forgets-the-dead": {
        "threads": _ALONE,
        "processes": ("queue", ProcessQueueForgettingTheDead),
        "coroutines": _ALONE,
        "asyncio": _ALONE,
        "redis": ("queue", RedisQueueForgettingTheDead),
    },
    "hands-to-the-dead": {
        "threads": _ALONE,
        "processes": "nothing is handed over: the kernel wakes waiters, who take the lock "
        "or the item themselves",
        "coroutines": _ALONE,
        "asyncio": _ALONE,
        "redis": ("lock", RedisLockHandingToTheDead),
    },
}

#: The environment variable that names the mutant to activate.
ENV = "CRITSEC_MUTANT"


def applies(mutant: str, runtime: str) -> bool:
    """Whether ``mutant`` exists on ``runtime`` (else MUTANTS says why not)."""
    return not isinstance(MUTANTS[mutant][runtime], str)


def _patch(runtime: str, factory: str, change: Change) -> None:
    cls = type(critsec.runtime(runtime))
    real = getattr(cls, factory)

    def make(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = real(self, *args, **kwargs)
        if isinstance(change, type) and issubclass(change, type(made)):
            made.__class__ = change  # same layout, broken methods
            return made
        return change(made)

    make.__name__ = make.__qualname__ = factory
    setattr(cls, factory, make)


def activate(mutant: str) -> None:
    """Make every runtime's factories hand out ``mutant``'s broken primitive
    (where it applies), for the rest of this process. Raises ``ValueError``
    for an unknown name."""
    if mutant not in MUTANTS:
        raise ValueError(f"unknown mutant {mutant!r} ({ENV}); known: {', '.join(MUTANTS)}")
    for runtime, how in MUTANTS[mutant].items():
        if not isinstance(how, str):
            _patch(runtime, *how)
