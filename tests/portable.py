"""Write a test task once, run it on every runtime.

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
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import critsec

Body = Callable[..., Generator[Any, Any, Any]]


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


class GeneratorOps:
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


class AsyncOps:
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


def go(rt: critsec.Runtime, *calls: tuple[Any, ...], timeout: float = 30) -> list[Any]:
    """Run ``(body, *args)`` calls as tasks of ``rt`` and return their values."""
    tasks = [critsec.task(adapt(body, rt.style), *args) for body, *args in calls]
    return rt.run(*tasks, timeout=timeout)
