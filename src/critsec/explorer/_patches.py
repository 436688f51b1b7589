"""Controlled blocking primitives: locks that ask the explorer's scheduler
instead of the operating system.

Design
------
A thread that blocks on a real lock is invisible to the explorer: it just
stops, and whoever holds the lock decides when it continues. To explore
schedules of locking code, every blocking operation must instead become a
question to the scheduler -- "task 2 waits for Lock #1: who runs now?" --
and a blocked task must simply not be runnable until what it waits for is
ready. This module provides such primitives and swaps them in for the
standard ones while one schedule runs (:class:`Window`).

Only three names are replaced in ``threading`` -- ``Lock`` (and
``_allocate_lock``, which ``Condition.wait`` uses for its per-waiter
locks), ``RLock`` and ``Condition`` -- because ``Semaphore``,
``BoundedSemaphore``, ``Event``, ``Barrier`` and ``queue.Queue`` (and
friends) look those names up *when they are constructed*; they become
controlled for free, on 3.11 and 3.13 alike. ``queue.SimpleQueue`` is C
code, so the standard library's own pure-Python version
(``queue._PySimpleQueue``, built on a ``Semaphore``) stands in for it.
critsec's threads runtime builds its lock, counter and queue from
``threading.Lock``/``Condition`` at call time, so it is covered too. This
is the approach of frontrun and of CHESS's "wrap the synchronisation API";
loom instead asks code to import its own primitives. Patching needs no
change to the user's code, at the price of covering only what is built
from these names *during* the schedule. A lock created at import time and
kept as a module global (the common case) is stood in for, for the
schedule (:class:`StandIns`); any other real lock a task touches -- an
attribute, a closure, a ``Queue`` made at import -- is caught by the
driver's check of every object a task touches (:func:`check_controlled`),
which fails the task with a hint rather than let it really block.

A controlled primitive keeps its state in plain Python attributes: the
explorer runs exactly one task at a time, so no further protection is
needed. Waiting is a *readiness predicate*, not a wake-up message: a task
blocked on a lock becomes runnable again as soon as the lock is free, and
re-checks when the scheduler picks it (like a real lock, a newcomer may
take the lock first). A wait with a timeout keeps the task runnable: if the
scheduler picks it while what it waits for is still not ready, the wait
times out *there* -- a legitimate interleaving, chosen, never guessed with
a real clock. The clock is virtual during a schedule: ``time.monotonic``
(and the copies ``threading`` and ``queue`` took of it) read it, and a
timeout moves it to the wait's deadline; ``time.sleep`` in a task is a
timed wait for nothing.

Threads the explorer does not schedule (the thread running ``setup()`` and
the invariant, or any other thread of the process) see controlled
primitives as plain ones: they may use them as long as they never have to
wait -- a wait that could only end by another task running raises an error
that says so, and a timed one times out at once. Outside a schedule the
factories hand out the real primitives.
"""

from __future__ import annotations

import _thread
import abc
import functools
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from ..runtimes._core import check_lock_args
from ._clock import _real_monotonic, _real_sleep, installed_clock

__all__ = [
    "SETUP",
    "Abandoned",
    "Condition",
    "Control",
    "Lock",
    "RLock",
    "SimpleQueue",
    "StandIns",
    "UncontrolledPrimitive",
    "Waitable",
    "Window",
    "active",
    "check_controlled",
]

# The real things, taken once at import, before anyone patches anything.
_real_allocate_lock = _thread.allocate_lock
_real_rlock = threading.RLock
_RealCondition = threading.Condition
_RealSimpleQueue = queue.SimpleQueue
_PySimpleQueue: Any = getattr(queue, "_PySimpleQueue")  # noqa: B009 (private, untyped)

#: The owner of a primitive taken by a thread the explorer does not schedule
#: (``setup()``, the invariant).
SETUP = -1


class Abandoned(BaseException):
    """Raised inside a task thread that the explorer gives up on (a deadlock,
    another task's failure, a limit): it unwinds the task so that its thread
    ends. A ``BaseException`` so that ``except Exception`` in the task does
    not swallow it."""


class UncontrolledPrimitive(RuntimeError):
    """A task used a blocking primitive made outside the schedule (at import
    time, typically): waiting on it would really block, and hang the
    explorer, so the task fails with this error instead."""


_RealLockType = _thread.LockType
_RealRLockType = type(_real_rlock())
_REAL_PRIMITIVES = (_RealLockType, _RealRLockType, _RealCondition)
#: Where the classes built on those live (Semaphore, Event, Queue, critsec's).
_PRIMITIVE_MODULES = ("threading", "queue", "critsec.runtimes")


def check_controlled(obj: Any) -> None:
    """Raise :class:`UncontrolledPrimitive` if ``obj`` is a real lock or
    condition, or a ``threading``/``queue``/critsec object built on one.
    Called by the driver when a task touches an object; never blocks."""
    if isinstance(obj, (Lock, RLock, Condition)):
        return
    culprit = None
    if isinstance(obj, _REAL_PRIMITIVES):
        culprit = obj
    elif type(obj).__module__.startswith(_PRIMITIVE_MODULES):
        try:
            fields = object.__getattribute__(obj, "__dict__")
        except AttributeError:
            return
        if isinstance(fields, dict):
            culprit = next((v for v in fields.values() if type(v) in _REAL_PRIMITIVES), None)
    if culprit is not None:
        kind = type(obj).__qualname__ if culprit is not obj else "lock"
        raise UncontrolledPrimitive(
            f"this {kind} was made outside the explored schedule (at import time?), so "
            "waiting on it would really block: the explorer controls the primitives "
            "made while a schedule runs, and stands in for the free locks that the "
            "scenario's modules keep as globals, not for this one. Make it in setup()"
        )


class Waitable(Protocol):
    """What a blocked task waits for."""

    def ready(self) -> bool:
        """True when the waiting task could go on now."""
        ...

    def describe(self) -> str:
        """What is waited for, for deadlock reports: ``"Lock #1 held by task 'b'"``."""
        ...


class Control(abc.ABC):
    """What controlled primitives ask of the driver running a schedule.

    Called from task threads (only the one the scheduler lets run) and from
    the thread running ``setup()`` and the invariant.
    """

    @abc.abstractmethod
    def task(self) -> int | None:
        """The index of the calling task, or None for any thread that is not a
        task of this schedule."""

    @abc.abstractmethod
    def controls_thread(self) -> bool:
        """True for the threads whose new primitives must be controlled and
        whose clock is virtual: the tasks, and the thread running setup()
        and the invariant."""

    @abc.abstractmethod
    def block(self, task: int, waitable: Waitable, deadline: float | None) -> bool:
        """Suspend ``task`` until ``waitable.ready()`` (True) or, if
        ``deadline`` is not None, until the scheduler lets the wait time out
        (False; the clock then shows ``deadline``). Other tasks run meanwhile."""

    @abc.abstractmethod
    def now(self) -> float:
        """The virtual clock."""

    @abc.abstractmethod
    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward (a sleep outside any task)."""

    @abc.abstractmethod
    def label(self, kind: str) -> str:
        """A name for a new primitive, stable within a schedule: ``"Lock #1"``."""

    @abc.abstractmethod
    def task_name(self, task: int) -> str:
        """``"task 'b'"``, or how the thread running setup is called."""

    @abc.abstractmethod
    def finished(self, task: int) -> bool:
        """True once ``task`` has returned or raised."""

    @abc.abstractmethod
    def sync(self, kind: str, text: str, location: str) -> None:
        """Record a synchronisation event of the calling task, if it was asked
        for by the user's code (not by a library built on the primitive)."""


_active: Control | None = None


def active() -> Control | None:
    """The control of the schedule running now, if any."""
    return _active


def _controlled() -> Control | None:
    """The control a primitive created now must obey (None: make a real one)."""
    control = _active
    if control is not None and control.controls_thread():
        return control
    return None


class _BaseLock:
    """The state and the waiting shared by :class:`Lock` and :class:`RLock`."""

    __slots__ = ("_control", "_owner", "_waiter_of", "label")
    _kind = "Lock"
    _control: Control
    _owner: int | None
    label: str
    #: Set on the per-waiter locks of a Condition: then what a task blocked
    #: on this lock waits for is a notify of that condition.
    _waiter_of: Condition | None

    def _setup(self, control: Control, label: str | None = None) -> None:
        self._control = control
        self._owner = None
        self._waiter_of = None
        self.label = label or control.label(self._kind)

    def _caller(self) -> int:
        me = self._control.task()
        return SETUP if me is None else me

    def _wait_free(self, blocking: bool, timeout: float) -> bool:
        """Wait until nobody holds the lock; False if not allowed to wait or
        the wait timed out."""
        if self._owner is None:
            return True
        if not blocking or timeout == 0:
            return False
        control = self._control
        me = control.task()
        if me is None:
            if timeout != -1:
                return False  # a timed wait nobody else can end: it times out now
            raise RuntimeError(
                f"{self.describe()}: the thread running setup() or the invariant (or a "
                "thread the explorer does not schedule) would wait for it forever; "
                "only tasks may block on a lock while the explorer runs"
            )
        deadline = None if timeout == -1 else control.now() + timeout
        while self._owner is not None:
            if not control.block(me, self, deadline):
                return False
        return True

    def ready(self) -> bool:
        return self._owner is None

    def describe(self) -> str:
        if self._waiter_of is not None:
            return f"{self._waiter_of._label} to be notified"
        owner = self._owner
        if owner is None:
            return f"{self.label} (free)"
        holder = self._control.task_name(owner)
        if owner != SETUP and self._control.finished(owner):
            holder += ", which finished without releasing it"
        return f"{self.label} held by {holder}"

    def _record(self, kind: str) -> None:
        if self._waiter_of is None:  # a Condition's waiters are its business
            self._control.sync(kind, f"{kind} {self.label}", self.label)

    def locked(self) -> bool:
        """True while some thread holds the lock."""
        return self._owner is not None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def _at_fork_reinit(self) -> None:
        self._owner = None

    def __repr__(self) -> str:
        state = "unlocked" if self._owner is None else f"locked by {self._caller_name()}"
        return f"<controlled {self.label}, {state}>"

    def _caller_name(self) -> str:
        return "?" if self._owner is None else self._control.task_name(self._owner)


class Lock(_BaseLock):
    """``threading.Lock`` under the explorer's control (see the module doc).

    ``Lock()`` called by a thread the explorer does not control returns a
    real ``_thread.lock``. Any thread may release it; ``acquire`` blocks
    the calling task only, as a scheduler decision.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, _label: str | None = None, **kwargs: Any) -> Any:
        control = _controlled()
        if control is None:
            return _real_allocate_lock(*args, **kwargs)
        self = super().__new__(cls)
        self._setup(control, _label)
        return self

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        check_lock_args(blocking, timeout)
        if not self._wait_free(blocking, timeout):
            return False
        self._owner = self._caller()
        self._record("acquire")
        return True

    def release(self) -> None:
        if self._owner is None:
            raise RuntimeError("release unlocked lock")
        self._owner = None
        self._record("release")


class RLock(_BaseLock):
    """``threading.RLock`` under the explorer's control: the owner may take
    it again; only the owner may release it."""

    _kind = "RLock"
    __slots__ = ("_count",)
    _count: int

    def __new__(cls, *args: Any, _label: str | None = None, **kwargs: Any) -> Any:
        control = _controlled()
        if control is None:
            return _real_rlock(*args, **kwargs)
        self = super().__new__(cls)
        self._setup(control, _label)
        self._count = 0
        return self

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        check_lock_args(blocking, timeout)
        me = self._caller()
        if self._owner == me:
            self._count += 1
            return True
        if not self._wait_free(blocking, timeout):
            return False
        self._owner, self._count = me, 1
        self._record("acquire")
        return True

    def release(self) -> None:
        if self._owner != self._caller() or not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._record("release")

    # The internal interface Condition uses to release an RLock fully while
    # waiting, and to restore its recursion level afterwards.
    def _is_owned(self) -> bool:
        return self._owner == self._caller() and self._count > 0

    def _release_save(self) -> tuple[int, int | None]:
        if not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._owner, self._count = None, 0
        self._record("release")
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        self._wait_free(True, -1)
        self._count, self._owner = state
        self._record("acquire")

    def _at_fork_reinit(self) -> None:
        self._owner, self._count = None, 0


class Condition(_RealCondition):
    """``threading.Condition`` under the explorer's control.

    Everything but ``wait`` is the standard class (built on the patched
    ``RLock`` and the given lock). ``wait`` is the standard algorithm too,
    with one difference: its per-waiter lock is labelled with this
    condition, so that a task blocked there is reported as waiting for a
    notify, not for some anonymous lock.
    """

    def __new__(cls, lock: Any = None) -> Any:
        if _controlled() is None:
            return _RealCondition(lock)
        return super().__new__(cls)

    def __init__(self, lock: Any = None) -> None:
        control = _controlled()
        self._label = control.label("Condition") if control is not None else "Condition"
        if lock is None:  # its own lock: called by the condition's name in reports
            lock = RLock(_label=self._label)
        super().__init__(lock)

    def wait(self, timeout: float | None = None) -> bool:
        # CPython's Condition.wait (3.11-3.13), with a labelled waiter lock.
        if not self._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError("cannot wait on un-acquired lock")
        if (control := _active) is not None:
            control.sync("wait", f"{self._label}.wait()", self._label)
        waiter = Lock()
        if isinstance(waiter, Lock):
            waiter._waiter_of = self
        waiter.acquire()
        self._waiters.append(waiter)  # type: ignore[attr-defined]
        saved_state = self._release_save()  # type: ignore[attr-defined]
        gotit = False
        try:  # restore state no matter what (e.g., KeyboardInterrupt)
            if timeout is None:
                waiter.acquire()
                gotit = True
            elif timeout > 0:
                gotit = waiter.acquire(True, timeout)
            else:
                gotit = waiter.acquire(False)
            return gotit
        finally:
            self._acquire_restore(saved_state)  # type: ignore[attr-defined]
            if not gotit:
                try:
                    self._waiters.remove(waiter)  # type: ignore[attr-defined]
                except ValueError:
                    pass

    def notify(self, n: int = 1) -> None:
        if (control := _active) is not None:
            control.sync("call", f"{self._label}.notify()", self._label)
        super().notify(n)

    def notify_all(self) -> None:
        if (control := _active) is not None:
            control.sync("call", f"{self._label}.notify_all()", self._label)
        # Not super().notify_all(): on some versions it calls self.notify,
        # which would record a second event.
        _RealCondition.notify(self, len(self._waiters))  # type: ignore[attr-defined]

    notifyAll = notify_all  # the standard alias

    def __repr__(self) -> str:
        return f"<controlled {self._label}({self._lock!r})>"  # type: ignore[attr-defined]


class SimpleQueue(_PySimpleQueue):  # type: ignore[misc]
    """``queue.SimpleQueue`` under the explorer's control: the standard
    library's pure-Python version, whose waiting goes through a (patched)
    ``Semaphore``. Outside a controlled thread, the real C one."""

    def __new__(cls) -> Any:
        if _controlled() is None:
            return _RealSimpleQueue()
        return super().__new__(cls)


class _Sleep:
    """What a sleeping task waits for: nothing but its deadline."""

    def ready(self) -> bool:
        return False

    def describe(self) -> str:
        return "the end of a sleep"


_SLEEP = _Sleep()


def monotonic() -> float:
    """``time.monotonic`` during a schedule: the virtual clock for the
    controlled threads, the real one for every other thread."""
    control = _active
    if control is not None and control.controls_thread():
        return control.now()
    return _real_monotonic()


def sleep(seconds: float) -> None:
    """``time.sleep`` during a schedule: in a task, a timed wait for nothing
    (others may run; the clock moves by ``seconds``); elsewhere the real one."""
    control = _active
    if control is None or not control.controls_thread():
        _real_sleep(seconds)
        return
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    me = control.task()
    if me is None:
        control.advance(seconds)
    else:
        control.block(me, _SLEEP, control.now() + seconds)


_real_thread_start = threading.Thread.start


def _thread_start(self: threading.Thread) -> None:
    """``Thread.start`` during a schedule: refused in a task, whose new
    thread the explorer could neither schedule nor wait for."""
    control = _active
    if control is not None and control.task() is not None:
        raise RuntimeError(
            "a task started a thread while the explorer runs: the explorer schedules "
            "only the tasks given to explore(); pass the thread's work as another task"
        )
    _real_thread_start(self)


#: (module, attribute, replacement) for the duration of a schedule.
_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (threading, "Lock", Lock),
    (threading, "_allocate_lock", Lock),
    (threading, "RLock", RLock),
    (threading, "Condition", Condition),
    (threading, "_time", monotonic),
    (queue, "SimpleQueue", SimpleQueue),
    (queue, "time", monotonic),
    (time, "monotonic", monotonic),
    (time, "sleep", sleep),
    (threading.Thread, "start", _thread_start),
)


def _unwrap(function: Any) -> Any:
    """The plain function under partials and bound methods."""
    while True:
        if isinstance(function, functools.partial):
            function = function.func
        elif hasattr(function, "__func__"):
            function = function.__func__
        else:
            return function


def _namespace(function: Any) -> dict[str, Any] | None:
    """The module globals ``function`` runs with; None for a callable
    without them."""
    namespace = getattr(_unwrap(function), "__globals__", None)
    return namespace if isinstance(namespace, dict) else None


def _closure(function: Any) -> list[tuple[Any, str]]:
    """(cell, name) for each variable ``function`` closes over (a task made
    by a factory: ``lock = Lock(); def task(s): with lock: ...``)."""
    plain = _unwrap(function)
    code, cells = getattr(plain, "__code__", None), getattr(plain, "__closure__", None)
    if code is None or not cells:
        return []
    return list(zip(cells, code.co_freevars, strict=True))


def _stand_in_for(value: Any, name: str) -> Any:
    """A controlled lock for a free real one, named ``name``; None for
    anything else (a held lock stays real: it cannot be handed over)."""
    kind = type(value)
    if kind not in (_RealLockType, _RealRLockType) or not _free(value):
        return None
    # Named as the program names it, and not numbered: the locks the
    # schedule makes keep their numbers (Lock #1, ...).
    return (Lock if kind is _RealLockType else RLock)(_label=name)


def _free(lock: Any) -> bool:
    """Whether a real lock is free now (taken and given back at once)."""
    if not lock.acquire(False):
        return False
    lock.release()
    return True


class StandIns:
    """For one schedule, inside its :class:`Window`: the real locks that the
    scenario's modules hold as globals -- ``lock = threading.Lock()`` at
    import time, the most common pattern there is -- and that its functions
    close over, replaced by controlled ones; the real ones are put back
    after (unless the program rebound the name meanwhile). A lock held at
    the start stays real, and so does a real lock anywhere else (an
    attribute, another module): the driver still fails a task that touches
    one (:func:`check_controlled`)."""

    def __init__(self, functions: Iterable[Any]) -> None:
        functions = list(functions)
        found = (_namespace(function) for function in functions)
        self.namespaces = list({id(ns): ns for ns in found if ns is not None}.values())
        self.cells = [pair for function in functions for pair in _closure(function)]
        self.swapped: list[tuple[dict[str, Any], str, Any, Any]] = []
        self.swapped_cells: list[tuple[Any, Any, Any]] = []

    def __enter__(self) -> StandIns:
        for namespace in self.namespaces:
            for name, value in list(namespace.items()):
                stand_in = _stand_in_for(value, name)
                if stand_in is not None:
                    namespace[name] = stand_in
                    self.swapped.append((namespace, name, value, stand_in))
        for cell, name in self.cells:
            try:
                value = cell.cell_contents
            except ValueError:  # empty: not yet bound
                continue
            stand_in = _stand_in_for(value, name)
            if stand_in is not None:
                cell.cell_contents = stand_in
                self.swapped_cells.append((cell, value, stand_in))
        return self

    def __exit__(self, *exc: object) -> None:
        for namespace, name, real, stand_in in reversed(self.swapped):
            if namespace.get(name) is stand_in:
                namespace[name] = real
        for cell, real, stand_in in reversed(self.swapped_cells):
            if cell.cell_contents is stand_in:
                cell.cell_contents = real
        self.swapped.clear()
        self.swapped_cells.clear()


class Window:
    """The span of one schedule (setup, tasks, invariant): the standard
    primitives and clocks are replaced on entry and restored on exit, even
    on error. One window at a time per process; entering a second one
    (explore inside explore, or from two threads) raises ``RuntimeError``.
    """

    def __init__(self, control: Control) -> None:
        self.control = control
        self.saved: list[tuple[Any, str, Any]] = []

    @staticmethod
    def ensure_free() -> None:
        """Raise ``RuntimeError`` if a window is open or a cooperative
        driver's clock is installed (another schedule runs)."""
        if _active is not None or installed_clock() is not None:
            raise RuntimeError(
                "explore() is already running in this process (called from a task, or "
                "from two threads at once): it replaces threading's primitives while "
                "it runs, so only one exploration can run at a time"
            )

    def __enter__(self) -> Window:
        global _active
        self.ensure_free()
        _active = self.control
        for module, name, replacement in _PATCHES:
            if hasattr(module, name):  # e.g. threading._time is private
                self.saved.append((module, name, getattr(module, name)))
                setattr(module, name, replacement)
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        for module, name, original in reversed(self.saved):
            setattr(module, name, original)
        self.saved.clear()
        _active = None
