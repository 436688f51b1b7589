"""Write a test scenario once, run it on every runtime, deterministically.

critsec's runtimes want tasks in three styles: plain functions (threads,
processes), generator functions (coroutines) and ``async def`` (asyncio).
To hold every runtime to *one* behavioural suite, test tasks are written
as generator functions that take an ``ops`` object first:

    def consumer(ops, q):
        item = yield from ops.get(q)     # may wait
        yield                            # a switch point
        return item

``adapt(fn, style)`` turns such a body into a task of the runtime's style:

* blocking: run the generator to its end; a bare ``yield`` does nothing
  (the OS schedules threads and processes), ``ops.get`` calls ``q.get``;
* generator: the generator itself; ``ops.get`` is ``yield from q.get()``;
* async: an ``async def`` that awaits what ``ops`` yields, and turns a
  bare ``yield`` into ``await asyncio.sleep(0)``.

asyncio's primitives take no timeouts (like the standard library's); the
async ``ops`` apply them with ``asyncio.timeout`` and report them the way
the blocking API does (``False`` from acquire, ``Empty``/``Full``).

Making the interleaving happen
------------------------------
A bare ``yield`` is a switch point only on the cooperative runtimes. A test
that needs a particular interleaving says so with two tools that every
runtime implements in its own way:

* ``event(rt)``, set with ``.set()`` and waited with ``yield from
  ops.wait(ev)``;
* ``probe(rt)``: a task calls ``me.announce()`` right before an operation
  that may block and ``me.passed()`` right after; another task's
  ``blocked = yield from ops.blocked(probe)`` waits until that task is
  blocked in the operation (True) or got past it (False: e.g. a lock that
  excludes nothing). On processes that is seen in ``/proc``
  (:mod:`interleave`); on the cooperative runtimes it is what the
  scheduler's order guarantees (the task ran until it parked or yielded).
  On threads it is None, "cannot tell": it only waits for the announcement.

Scenarios and the explorer
--------------------------
On threads, no amount of real runs shows a race reliably (the GIL), so a
scenario -- ``build(rt)`` making the primitives, the task calls and a check
of their results -- runs under ``critsec.check`` there: every schedule
(within a preemption bound) of real threads, with switch points in the test
bodies *and* inside critsec's runtime code (``include``). Elsewhere it runs
once with ``rt.run``: the cooperative schedulers' order is deterministic,
and the processes scenarios force their interleavings with probes. See
:func:`play`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

import critsec

import interleave

Body = Callable[..., Generator[Any, Any, Any]]

#: Seconds a run may take before it counts as hung (a correct one takes far
#: less). Tests whose broken primitives would hang use :func:`hang_timeout`.
RUN_TIMEOUT = 30.0
_HANG_TIMEOUTS = {"processes": 5.0, "redis": 5.0, "coroutines": 2.0, "asyncio": 2.0}

#: Modules the explorer switches inside, besides the tests' own code: the
#: runtimes' lock, counter and queue are checked at bytecode granularity.
EXPLORE_INCLUDE = ("critsec.runtimes",)


def hang_timeout(rt: critsec.Runtime[Any, Any]) -> float:
    """A short run timeout for a scenario that a broken primitive would
    hang: a hang then fails the test in seconds. Generous against a correct
    run, which takes milliseconds (processes: the start of a few children)."""
    return _HANG_TIMEOUTS.get(rt.name, RUN_TIMEOUT)


# -- events and probes, one kind per runtime ------------------------------------------


class Flag:
    """An event for the cooperative runtimes: set by one task, polled
    (between switch points) by another."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class CooperativeProbe:
    """A probe for the cooperative runtimes. Nothing runs between two switch
    points of a task: once a task announced, another task runs again only
    after the announcer parked in its operation or went past it (to its
    next yield), so the state tells which."""

    def __init__(self) -> None:
        self.state = interleave.IDLE

    def announce(self) -> None:
        self.state = interleave.ANNOUNCED

    def passed(self) -> None:
        self.state = interleave.PASSED


class ThreadProbe:
    """A probe for threads (under the explorer): it cannot see that a
    thread blocks, so ``wait_blocked`` only waits for the announcement and
    says None; the explorer tries both orders of what follows."""

    def __init__(self) -> None:
        self.state = interleave.IDLE
        self._announced = threading.Event()  # made in setup(): under control

    def announce(self) -> None:
        self.state = interleave.ANNOUNCED
        self._announced.set()

    def passed(self) -> None:
        self.state = interleave.PASSED

    def wait_blocked(self) -> None:
        self._announced.wait()


def runs_processes(rt: critsec.Runtime[Any, Any]) -> bool:
    """Does ``rt`` run its tasks as processes (processes, redis)?"""
    return rt.name in ("processes", "redis")


def event(rt: critsec.Runtime[Any, Any]) -> Any:
    """An event for ``rt``'s tasks: ``set()``, ``is_set()``, ``ops.wait``."""
    if rt.name == "threads":
        return threading.Event()
    if runs_processes(rt):
        return rt.context.Event()  # type: ignore[attr-defined]
    return Flag()


def probe(rt: critsec.Runtime[Any, Any]) -> Any:
    """A probe for one of ``rt``'s tasks (see the module docstring). Skips
    the test where the processes runtime cannot see a blocked process."""
    if rt.name == "threads":
        return ThreadProbe()
    if rt.name == "redis":
        return interleave.RedisProbe(rt.context, rt.url)  # type: ignore[attr-defined]
    if rt.name == "processes":
        if not interleave.CAN_SEE_BLOCKED:
            pytest.skip(interleave.WHY_NOT)
        return interleave.ProcessProbe(rt.context)  # type: ignore[attr-defined]
    return CooperativeProbe()


#: What ``ops.blocked`` may say when the task is blocked: True, or None on
#: threads, where the explorer tries every order instead of seeing it.
BLOCKED = (True, None)


# -- the operations, per style --------------------------------------------------------


class BlockingOps:
    """Operations that wait by blocking the calling thread or process."""

    @staticmethod
    def acquire(lock: Any, blocking: bool = True, timeout: float = -1) -> Generator[Any, Any, bool]:
        return lock.acquire(blocking, timeout)  # type: ignore[no-any-return]
        yield  # unreachable: makes this a generator

    @staticmethod
    def put(
        q: Any, item: Any, block: bool = True, timeout: float | None = None
    ) -> Generator[Any, Any, None]:
        q.put(item, block, timeout)
        return
        yield

    @staticmethod
    def get(q: Any, block: bool = True, timeout: float | None = None) -> Generator[Any, Any, Any]:
        return q.get(block, timeout)
        yield

    @staticmethod
    def join(q: Any) -> Generator[Any, Any, None]:
        q.join()
        return
        yield

    @staticmethod
    def wait(ev: Any) -> Generator[Any, Any, None]:
        ev.wait()
        return
        yield

    @staticmethod
    def blocked(other: Any) -> Generator[Any, Any, bool | None]:
        return other.wait_blocked()  # type: ignore[no-any-return]
        yield


class _CooperativeWaits:
    """``wait`` and ``blocked`` for the cooperative runtimes: poll between
    switch points (a bare ``yield`` is one, for both adapters)."""

    @staticmethod
    def wait(ev: Any) -> Generator[Any, Any, None]:
        while not ev.is_set():
            yield

    @staticmethod
    def blocked(other: Any) -> Generator[Any, Any, bool]:
        while other.state == interleave.IDLE:
            yield
        return bool(other.state == interleave.ANNOUNCED)


class GeneratorOps(_CooperativeWaits):
    """Operations that wait by yielding to the coroutines scheduler."""

    @staticmethod
    def acquire(lock: Any, blocking: bool = True, timeout: float = -1) -> Generator[Any, Any, bool]:
        return (yield from lock.acquire(blocking, timeout))  # type: ignore[no-any-return]

    @staticmethod
    def put(
        q: Any, item: Any, block: bool = True, timeout: float | None = None
    ) -> Generator[Any, Any, None]:
        yield from q.put(item, block, timeout)

    @staticmethod
    def get(q: Any, block: bool = True, timeout: float | None = None) -> Generator[Any, Any, Any]:
        return (yield from q.get(block, timeout))

    @staticmethod
    def join(q: Any) -> Generator[Any, Any, None]:
        yield from q.join()


class _Await:
    """An awaitable handed from a body to the async driver."""

    def __init__(self, make: Callable[[], Awaitable[Any]]) -> None:
        self.make = make


class AsyncOps(_CooperativeWaits):
    """Operations that wait by awaiting on the event loop."""

    @staticmethod
    def acquire(lock: Any, blocking: bool = True, timeout: float = -1) -> Generator[Any, Any, bool]:
        if not blocking:
            if lock.locked():
                return False
            timeout = 0

        async def attempt() -> bool:
            if timeout == -1:
                return await lock.acquire()  # type: ignore[no-any-return]
            try:
                async with asyncio.timeout(timeout):
                    return await lock.acquire()  # type: ignore[no-any-return]
            except TimeoutError:
                return False

        return (yield _Await(attempt))  # type: ignore[no-any-return]

    @staticmethod
    def put(
        q: Any, item: Any, block: bool = True, timeout: float | None = None
    ) -> Generator[Any, Any, None]:
        if not block:
            q.put_nowait(item)
            return

        async def attempt() -> None:
            try:
                async with asyncio.timeout(timeout):
                    await q.put(item)
            except TimeoutError:
                raise critsec.Full from None

        yield _Await(attempt)

    @staticmethod
    def get(q: Any, block: bool = True, timeout: float | None = None) -> Generator[Any, Any, Any]:
        if not block:
            return q.get_nowait()

        async def attempt() -> Any:
            try:
                async with asyncio.timeout(timeout):
                    return await q.get()
            except TimeoutError:
                raise critsec.Empty from None

        return (yield _Await(attempt))

    @staticmethod
    def join(q: Any) -> Generator[Any, Any, None]:
        yield _Await(q.join)


class BlockingTask:
    """A body as a plain function; a class so processes can pickle it."""

    def __init__(self, body: Body) -> None:
        self.body = body
        self.__name__ = self.__qualname__ = body.__name__

    def __call__(self, *args: Any) -> Any:
        steps = self.body(BlockingOps, *args)
        try:
            while True:
                request = next(steps)
                assert request is None, f"blocking ops never yield, got {request!r}"
        except StopIteration as done:
            return done.value


def adapt(body: Body, style: str) -> Callable[..., Any]:
    """The test body ``body`` as a task function of ``style``."""
    if style == "blocking":
        return BlockingTask(body)
    if style == "generator":

        def generator_task(*args: Any) -> Generator[Any, Any, Any]:
            return (yield from body(GeneratorOps, *args))

        generator_task.__name__ = generator_task.__qualname__ = body.__name__
        return generator_task
    if style == "async":

        async def async_task(*args: Any) -> Any:
            steps = body(AsyncOps, *args)
            send: Any = None
            error: BaseException | None = None
            while True:
                try:
                    request = steps.throw(error) if error is not None else steps.send(send)
                except StopIteration as done:
                    return done.value
                send, error = None, None
                if request is None:
                    await asyncio.sleep(0)
                    continue
                try:
                    send = await request.make()
                except BaseException as exc:  # handed back into the body
                    error = exc

        async_task.__name__ = async_task.__qualname__ = body.__name__
        return async_task
    raise ValueError(f"unknown style {style!r}")


def go(
    rt: critsec.Runtime[Any, Any], *calls: tuple[Any, ...], timeout: float = RUN_TIMEOUT
) -> list[Any]:
    """Run ``(body, *args)`` calls as tasks of ``rt`` and return their values."""
    tasks = [critsec.task(adapt(body, rt.style), *args) for body, *args in calls]
    return rt.run(*tasks, timeout=timeout)


# -- scenarios ---------------------------------------------------------------------------


@dataclass
class Scenario:
    """What a test runs: ``calls`` (``(body, *args)``, one task each) and
    ``check(results)``, which asserts on the tasks' return values (and on
    the primitives it closes over). ``timeout`` bounds a run (not on
    threads: the explorer needs none); ``explore`` holds options for
    ``critsec.check`` on threads (default: every schedule within one
    preemption, which must be exhausted)."""

    calls: list[tuple[Any, ...]]
    check: Callable[[list[Any]], None]
    timeout: float = RUN_TIMEOUT
    explore: dict[str, Any] = field(default_factory=dict)


class _Schedule:
    """The state of one explored schedule: a freshly built scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.results: list[Any] = [None] * len(scenario.calls)


def _explorer_task(index: int, name: str) -> Callable[[_Schedule], None]:
    def task(schedule: _Schedule) -> None:
        body, *args = schedule.scenario.calls[index]
        schedule.results[index] = BlockingTask(body)(*args)

    task.__name__ = task.__qualname__ = name
    return task


def play(
    rt: critsec.Runtime[Any, Any], build: Callable[[critsec.Runtime[Any, Any]], Scenario]
) -> None:
    """Run the scenario ``build(rt)`` makes, and check it.

    Threads: under the explorer (``critsec.check``, seed 0): ``build`` is
    the setup of every schedule, so its primitives are under control; each
    call is a task; the check is the invariant. Other runtimes: one run.
    """
    if rt.name != "threads":
        scenario = build(rt)
        scenario.check(go(rt, *scenario.calls, timeout=scenario.timeout))
        return
    shape = build(rt)  # for the tasks' names only (its primitives are not used)
    tasks = [_explorer_task(i, call[0].__name__) for i, call in enumerate(shape.calls)]
    options = shape.explore or {"strategy": "dfs", "preemption_bound": 1, "max_schedules": 5000}

    def invariant(schedule: _Schedule) -> bool:
        schedule.scenario.check(schedule.results)
        return True

    result = critsec.check(
        lambda: _Schedule(build(rt)), tasks, invariant, include=EXPLORE_INCLUDE, **options
    )
    if options["strategy"] == "dfs":
        # A pass that did not try every schedule within the bound proves
        # little: raise the bound or max_schedules, or shrink the scenario.
        assert result.exhausted, f"dfs stopped after {result.schedules} schedules"
