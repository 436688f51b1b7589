"""The asyncio runtime: ``async def`` tasks, asyncio-style lock and queue.

The shared suite (test_primitives.py) holds this runtime to the common
behaviour; these tests pin what is asyncio's own: exact interleavings at
``await``, cancellation safety, primitives not bound to one event loop, and
``run`` versus ``run_async``. Nothing sleeps for time: ``asyncio.sleep(0)``
only lets the other ready tasks take their turn.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest

import critsec
from critsec.runtimes._asyncio import AsyncioRuntime
from critsec.runtimes._core import NOT_EMPTY, NOT_FULL, UNLOCKED


def asyncio_rt() -> AsyncioRuntime:
    rt = critsec.runtime("asyncio")
    assert isinstance(rt, AsyncioRuntime)
    return rt


def waiting(primitive: Any, condition: str) -> int:
    """How many tasks wait on ``primitive`` for ``condition``."""
    return len(primitive._waiters[condition])


async def until(check: Callable[[], bool]) -> None:
    """Let the other ready tasks run until ``check()`` holds."""
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the other tasks never got there")


# -- the lesson: where the await is decides everything ------------------------


async def read_await_write(counter: Any, n: int, delta: int) -> None:
    for _ in range(n):
        value = counter.value
        await asyncio.sleep(0)  # a switch between the read and the write
        counter.value = value + delta


async def await_then_update(counter: Any, n: int, delta: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)  # the only switch is outside the critical section
        counter.value += delta


@pytest.mark.parametrize("n", [1, 50])
def test_await_inside_critical_section_loses_updates_exactly(n: int) -> None:
    # The event loop runs ready tasks in turn, like round-robin: each task
    # overwrites the other's writes, and the second writes last: 10 - n.
    rt = asyncio_rt()
    counter = rt.counter(10)
    rt.run(
        critsec.task(read_await_write, counter, n, 1),
        critsec.task(read_await_write, counter, n, -1),
    )
    assert counter.value == 10 - n


def test_awaits_outside_critical_section_need_no_lock() -> None:
    rt = asyncio_rt()
    counter = rt.counter(10)
    rt.run(
        critsec.task(await_then_update, counter, 300, 1),
        critsec.task(await_then_update, counter, 301, -1),
    )
    assert counter.value == 9


# -- the lock -----------------------------------------------------------------


def test_lock_held_across_awaits_makes_the_other_wait() -> None:
    rt = asyncio_rt()
    lock = rt.lock()
    log: list[str] = []

    async def holder() -> None:
        async with lock:
            log.append("holder in")
            for i in range(3):
                await asyncio.sleep(0)
                log.append(f"holder still in {i}")
        log.append("holder out")

    async def waiter() -> None:
        log.append(f"waiter sees locked={lock.locked()}")
        log.append(f"waiter in ({await lock.acquire()})")
        lock.release()

    rt.run(holder, waiter)
    assert log == [
        "holder in",
        "waiter sees locked=True",
        "holder still in 0",
        "holder still in 1",
        "holder still in 2",
        "holder out",
        "waiter in (True)",
    ]


def test_lock_waiter_cancelled_after_wake_up_passes_it_on() -> None:
    async def main() -> list[str]:
        lock = asyncio_rt().lock()
        log: list[str] = []

        async def take(name: str) -> None:
            async with lock:
                log.append(name)

        await lock.acquire()
        first = asyncio.create_task(take("first"))
        second = asyncio.create_task(take("second"))
        await until(lambda: waiting(lock, UNLOCKED) == 2)
        lock.release()  # wakes `first`...
        first.cancel()  # ...which is cancelled before it could take the lock
        async with asyncio.timeout(5):  # a lost wake-up would hang: fail instead
            await second
        assert first.cancelled()
        return log

    assert asyncio.run(main()) == ["second"]


def test_cancelled_lock_waiter_leaves_the_list() -> None:
    async def main() -> None:
        lock = asyncio_rt().lock()
        await lock.acquire()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await lock.acquire()
        assert waiting(lock, UNLOCKED) == 0
        assert lock.locked()  # still ours: the cancelled acquire took nothing
        lock.release()
        assert await lock.acquire() is True

    asyncio.run(main())


# -- the queue ----------------------------------------------------------------


def test_full_queue_makes_the_putter_wait() -> None:
    def run(maxsize: int) -> list[str]:
        rt = asyncio_rt()
        q = rt.queue(maxsize)
        log: list[str] = []

        async def producer() -> None:
            for i in range(3):
                await q.put(i)
                log.append(f"put {i}")

        async def consumer() -> None:
            for _ in range(3):
                log.append(f"got {await q.get()}")

        rt.run(producer, consumer)
        return log

    # Unbounded, put never waits, so the producer never lets the consumer in.
    assert run(0) == ["put 0", "put 1", "put 2", "got 0", "got 1", "got 2"]
    # With room for one item, each put after the first waits for a get.
    assert run(1) == ["put 0", "got 0", "put 1", "got 1", "put 2", "got 2"]


def test_getter_cancelled_after_wake_up_passes_it_on() -> None:
    async def main() -> Any:
        q = asyncio_rt().queue()
        first = asyncio.create_task(q.get())
        second = asyncio.create_task(q.get())
        await until(lambda: waiting(q, NOT_EMPTY) == 2)
        q.put_nowait("item")  # wakes `first`...
        first.cancel()  # ...which is cancelled before it could take the item
        async with asyncio.timeout(5):  # a lost wake-up would hang: fail instead
            item = await second
        assert first.cancelled()
        return item

    assert asyncio.run(main()) == "item"


def test_putter_cancelled_after_wake_up_passes_it_on() -> None:
    async def main() -> list[Any]:
        q = asyncio_rt().queue(1)
        q.put_nowait("old")
        first = asyncio.create_task(q.put("first"))
        second = asyncio.create_task(q.put("second"))
        await until(lambda: waiting(q, NOT_FULL) == 2)
        assert q.get_nowait() == "old"  # wakes `first`...
        first.cancel()  # ...which is cancelled before it could put
        async with asyncio.timeout(5):
            await second
        return [q.get_nowait(), q.qsize()]

    assert asyncio.run(main()) == ["second", 0]


def test_cancelled_getter_leaves_the_list() -> None:
    async def main() -> None:
        q = asyncio_rt().queue()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await q.get()
        assert waiting(q, NOT_EMPTY) == 0
        q.put_nowait(1)
        assert q.qsize() == 1  # nobody took it
        assert await q.get() == 1

    asyncio.run(main())


def test_shutdown_wakes_waiting_getter_and_putter() -> None:
    async def main() -> list[str]:
        rt = asyncio_rt()
        empty, full = rt.queue(), rt.queue(1)
        full.put_nowait("kept")

        async def expect_shutdown(wait: Any) -> str:
            try:
                await wait
            except critsec.ShutDown:
                return "shut down"
            return "no"

        getter = asyncio.create_task(expect_shutdown(empty.get()))
        putter = asyncio.create_task(expect_shutdown(full.put("more")))
        await until(lambda: waiting(empty, NOT_EMPTY) == 1 and waiting(full, NOT_FULL) == 1)
        empty.shutdown()
        full.shutdown()
        return [await getter, await putter, full.get_nowait()]

    assert asyncio.run(main()) == ["shut down", "shut down", "kept"]


# -- not bound to one event loop ----------------------------------------------


def test_primitives_work_across_runs() -> None:
    # Each run() is a new event loop; the lock and queue were made before
    # either, and both are waited on in both.
    rt = asyncio_rt()
    lock, q = rt.lock(), rt.queue(1)

    async def producer() -> None:
        for i in range(3):
            async with lock:
                await asyncio.sleep(0)  # the consumer waits for the lock here
            await q.put(i)  # and here the producer waits for room

    async def consumer() -> list[int]:
        got = []
        for _ in range(3):
            async with lock:
                await asyncio.sleep(0)
            got.append(await q.get())
        return got

    for _ in range(2):
        assert rt.run(producer, consumer) == [None, [0, 1, 2]]
    assert not lock.locked() and q.empty()


# -- running tasks ------------------------------------------------------------


def test_run_inside_a_running_loop_points_to_run_async() -> None:
    rt = asyncio_rt()

    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    async def main() -> list[Any]:
        with pytest.raises(RuntimeError, match=r"await rt\.run_async"):
            rt.run(critsec.task(double, 1))
        assert await rt.run_async() == []
        with pytest.raises(ValueError):
            await rt.run_async(critsec.task(double, 1), timeout=0)
        return await rt.run_async(critsec.task(double, 1), critsec.task(double, 2))

    assert asyncio.run(main()) == [2, 4]


def test_non_async_function_is_refused_before_anything_runs() -> None:
    ran: list[str] = []

    def plain() -> None:
        ran.append("plain")

    def generator() -> Any:
        ran.append("generator")
        yield

    async def fine() -> None:
        ran.append("fine")

    rt = asyncio_rt()
    with pytest.raises(TypeError, match=r"task '\S*plain' is not an async function"):
        rt.run(fine, plain)
    with pytest.raises(TypeError, match=r"task '\S*generator' .*runtime\('coroutines'\)"):
        rt.run(fine, generator)
    with pytest.raises(TypeError, match=r"task '\S*<lambda>' returned int"):
        rt.run(fine, lambda: 42)
    assert ran == []  # `fine` was never started: no "never awaited" either


def test_callables_returning_coroutines_are_accepted() -> None:
    async def value(x: int) -> int:
        return x

    rt = asyncio_rt()
    assert rt.run(functools.partial(value, 1), lambda: value(2), critsec.task(value, 3)) == [
        1,
        2,
        3,
    ]


def test_task_error_cancels_the_others() -> None:
    rt = asyncio_rt()
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("forever")
            raise

    async def failing() -> None:
        await asyncio.sleep(0)
        raise KeyError("boom")

    with pytest.raises(critsec.TaskError) as caught:
        rt.run(forever, failing)
    assert caught.value.task.endswith("failing")
    assert isinstance(caught.value.__cause__, KeyError)
    assert cancelled == ["forever"]


def test_a_tasks_own_timeout_error_is_a_task_error() -> None:
    async def gives_up() -> None:
        raise TimeoutError("my own")

    with pytest.raises(critsec.TaskError) as caught:
        asyncio_rt().run(gives_up, timeout=30)
    assert isinstance(caught.value.__cause__, TimeoutError)


def test_timeout_names_the_unfinished_tasks() -> None:
    rt = asyncio_rt()

    async def stuck() -> None:
        await asyncio.Event().wait()

    async def quick() -> int:
        return 1

    with pytest.raises(TimeoutError, match="stuck") as caught:
        rt.run(stuck, quick, timeout=0.05)
    assert "quick" not in str(caught.value)


def test_lock_is_fifo_fair_like_asyncio_lock() -> None:
    # asyncio.Lock documents fairness: a task that releases and at once
    # re-acquires must queue behind a task already waiting.
    async def scenario(lock: Any) -> list[str]:
        log = []

        async def hog() -> None:
            for i in range(4):
                async with lock:
                    log.append(f"hog {i}")
                    await asyncio.sleep(0)

        async def other() -> None:
            await asyncio.sleep(0)
            async with lock:
                log.append("other")

        await asyncio.gather(hog(), other())
        return log

    expected = asyncio.run(scenario(asyncio.Lock()))
    assert expected == ["hog 0", "hog 1", "other", "hog 2", "hog 3"]
    assert asyncio.run(scenario(critsec.runtime("asyncio").lock())) == expected
