"""One behavioural suite for the lock, counter and queue of every runtime.

Each test body is written once (see ``portable.py``) and runs on threads,
processes (fork and spawn), coroutines and asyncio. Nothing here sleeps or
measures time: tasks synchronise through the primitives under test.
"""

from __future__ import annotations

import asyncio
import queue
from collections import Counter
from typing import Any

import pytest

import critsec

from portable import go

# -- task bodies (module level: the processes runtime pickles them) ---------


def exclusive_worker(ops: Any, lock: Any, inside: Any, violations: Any, rounds: int) -> Any:
    for _ in range(rounds):
        yield from ops.acquire(lock)
        try:
            if inside.add(1) != 1:
                violations.add(1)
            yield  # a switch point inside the critical section
            inside.add(-1)
        finally:
            lock.release()
        yield
    return rounds


def locked_updates(ops: Any, lock: Any, counter: Any, n: int, delta: int) -> Any:
    for _ in range(n):
        yield from ops.acquire(lock)
        try:
            value = counter.value
            yield  # the switch that loses updates without the lock
            counter.value = value + delta
        finally:
            lock.release()


def unlocked_updates(ops: Any, counter: Any, n: int, delta: int) -> Any:
    for _ in range(n):
        value = counter.value
        yield
        counter.value = value + delta


def atomic_adds(ops: Any, counter: Any, n: int, delta: int) -> Any:
    for _ in range(n):
        counter.add(delta)
        yield


def producer(ops: Any, q: Any, items: list[Any], left: Any = None) -> Any:
    for item in items:
        yield from ops.put(q, item)
    if left is not None and left.add(-1) == 0:
        q.shutdown()  # the last producer closes the queue: consumers drain, then stop
    return len(items)


def consumer(ops: Any, q: Any, limit: int = -1, done: bool = False) -> Any:
    got = []
    while limit < 0 or len(got) < limit:
        try:
            item = yield from ops.get(q)
        except critsec.ShutDown:
            break
        got.append(item)
        if done:
            q.task_done()
        yield
    return got


def put_expecting_shutdown(ops: Any, q: Any, item: Any) -> Any:
    try:
        yield from ops.put(q, item)
    except critsec.ShutDown as exc:
        return ("shutdown", isinstance(exc, critsec.CritsecError))
    return "put"


def get_expecting_shutdown(ops: Any, q: Any) -> Any:
    try:
        item = yield from ops.get(q)
    except critsec.ShutDown:
        return "shutdown"
    return ("got", item)


def shut_down_later(ops: Any, q: Any, immediate: bool, switches: int) -> Any:
    for _ in range(switches):
        yield  # let the waiter block first (certain on cooperative runtimes)
    q.shutdown(immediate=immediate)
    return "shut"


def joiner(ops: Any, q: Any, processed: Any = None) -> Any:
    yield from ops.join(q)
    return None if processed is None else processed.value


def worker_marking_done(ops: Any, q: Any, processed: Any, n: int) -> Any:
    for _ in range(n):
        yield from ops.get(q)
        yield
        processed.add(1)
        q.task_done()


def timeouts(ops: Any, lock: Any, q: Any) -> Any:
    results = {}
    assert (yield from ops.acquire(lock))
    try:
        results["lock_timeout"] = yield from ops.acquire(lock, True, 0.05)
        results["lock_nonblocking"] = yield from ops.acquire(lock, False)
    finally:
        lock.release()
    try:
        yield from ops.get(q, True, 0.05)
        results["get"] = "got"
    except queue.Empty:
        results["get"] = "empty"
    q.put_nowait("x")
    try:
        yield from ops.put(q, "y", True, 0.05)
        results["put"] = "put"
    except queue.Full:
        results["put"] = "full"
    return results


def failing(ops: Any, message: str) -> Any:
    yield
    raise ValueError(message)


def returning(ops: Any, value: Any) -> Any:
    yield
    return value


# -- the lock --------------------------------------------------------------


def test_lock_excludes(rt: critsec.Runtime) -> None:
    # Several workers take the lock and switch inside the critical section;
    # only one may ever be inside at a time.
    lock, inside, violations = rt.lock(), rt.counter(0), rt.counter(0)
    rounds = 200
    results = go(rt, *[(exclusive_worker, lock, inside, violations, rounds)] * 4)
    assert results == [rounds] * 4
    assert violations.value == 0
    assert inside.value == 0
    assert not lock.locked()


def test_lock_basics(rt: critsec.Runtime) -> None:
    lock = rt.lock()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    assert not lock.locked()


def test_lock_timeouts_and_queue_timeouts(rt: critsec.Runtime) -> None:
    (results,) = go(rt, (timeouts, rt.lock(), rt.queue(1)))
    assert results == {
        "lock_timeout": False,
        "lock_nonblocking": False,
        "get": "empty",
        "put": "full",
    }


# -- the counter -----------------------------------------------------------


def test_counter_exact_with_lock(rt: critsec.Runtime) -> None:
    # The lesson: +1 n times and -1 n+1 times from 10, under a lock, is 9.
    n = 300
    lock, counter = rt.lock(), rt.counter(10)
    go(rt, (locked_updates, lock, counter, n, 1), (locked_updates, lock, counter, n + 1, -1))
    assert counter.value == 9


def test_counter_add_is_atomic(rt: critsec.Runtime) -> None:
    counter = rt.counter(10)
    go(rt, (atomic_adds, counter, 500, 1), (atomic_adds, counter, 501, -1))
    assert counter.value == 9
    assert counter.add(5) == 14


@pytest.mark.parametrize("name", ["coroutines", "asyncio"])
def test_unlocked_switch_in_critical_section_loses_updates(name: str) -> None:
    # Cooperative runtimes switch only where the task says so, so a switch
    # between read and write loses updates on every run, not by luck.
    rt = critsec.runtime(name)
    counter = rt.counter(10)
    go(rt, (unlocked_updates, counter, 100, 1), (unlocked_updates, counter, 101, -1))
    assert counter.value != 9


def test_counter_value_is_read_write(rt: critsec.Runtime) -> None:
    counter = rt.counter()
    assert counter.value == 0
    counter.value = 41
    counter.value += 1
    assert counter.value == 42


# -- the queue -------------------------------------------------------------


def test_queue_fifo_through_a_small_bound(rt: critsec.Runtime) -> None:
    q = rt.queue(3)
    items = list(range(60))
    produced, consumed = go(rt, (producer, q, items), (consumer, q, len(items)))
    assert produced == len(items)
    assert consumed == items


def test_queue_bounds(rt: critsec.Runtime) -> None:
    q = rt.queue(2)
    assert q.maxsize == 2
    assert q.empty() and not q.full() and q.qsize() == 0
    q.put_nowait("a")
    q.put_nowait("b")
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue.Full):
        q.put_nowait("c")
    with pytest.raises(asyncio.QueueFull):  # one exception, both vocabularies
        q.put_nowait("c")
    assert q.get_nowait() == "a"
    assert q.get_nowait() == "b"
    with pytest.raises(critsec.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get_nowait()


def test_unbounded_queue_is_never_full(rt: critsec.Runtime) -> None:
    q = rt.queue()
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full() and q.qsize() == 1000
    assert [q.get_nowait() for _ in range(1000)] == list(range(1000))


def test_shutdown_drains_then_raises(rt: critsec.Runtime) -> None:
    q = rt.queue()
    q.put_nowait(1)
    q.put_nowait(2)
    q.shutdown()
    assert q.is_shutdown
    with pytest.raises(critsec.ShutDown):
        q.put_nowait(3)
    assert q.get_nowait() == 1
    assert q.get_nowait() == 2
    with pytest.raises(critsec.ShutDown):
        q.get_nowait()
    # A blocking get on a shut-down, empty queue raises too; it never waits.
    (outcome,) = go(rt, (get_expecting_shutdown, q))
    assert outcome == "shutdown"


def test_shutdown_immediate_discards(rt: critsec.Runtime) -> None:
    q = rt.queue()
    for i in range(3):
        q.put_nowait(i)
    q.shutdown(immediate=True)
    assert q.qsize() == 0
    with pytest.raises(critsec.ShutDown):
        q.get_nowait()
    # The discarded items count as done: join() returns at once.
    assert go(rt, (joiner, q)) == [None]


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_putter(rt: critsec.Runtime, immediate: bool) -> None:
    q = rt.queue(1)
    q.put_nowait("fills the queue")
    outcome, _ = go(rt, (put_expecting_shutdown, q, "blocked"), (shut_down_later, q, immediate, 3))
    assert outcome == ("shutdown", True)
    if immediate:
        assert q.qsize() == 0
    else:
        assert q.get_nowait() == "fills the queue"


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_getters(rt: critsec.Runtime, immediate: bool) -> None:
    q = rt.queue()
    outcomes = go(
        rt,
        (get_expecting_shutdown, q),
        (get_expecting_shutdown, q),
        (shut_down_later, q, immediate, 3),
    )
    assert outcomes == ["shutdown", "shutdown", "shut"]


def test_join_waits_for_task_done(rt: critsec.Runtime) -> None:
    q, processed = rt.queue(), rt.counter(0)
    for i in range(20):
        q.put_nowait(i)
    # join() may return only after every item was taken *and* marked done.
    seen_by_joiner, _ = go(rt, (joiner, q, processed), (worker_marking_done, q, processed, 20))
    assert seen_by_joiner == 20
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_many_producers_and_consumers_lose_and_duplicate_nothing(rt: critsec.Runtime) -> None:
    q, left = rt.queue(4), rt.counter(3)
    batches = [[(p, i) for i in range(150)] for p in range(3)]
    results = go(
        rt,
        *[(producer, q, batch, left) for batch in batches],
        *[(consumer, q) for _ in range(3)],
    )
    assert results[:3] == [150, 150, 150]
    taken = [item for got in results[3:] for item in got]
    assert Counter(map(tuple, taken)) == Counter(item for batch in batches for item in batch)
    # Each producer's items arrive in its own order (FIFO per producer).
    for got in results[3:]:
        for p in range(3):
            mine = [tuple(item) for item in got if item[0] == p]
            assert mine == sorted(mine)


# -- running tasks ---------------------------------------------------------


def test_results_in_task_order(rt: critsec.Runtime) -> None:
    assert go(rt, (returning, "a"), (returning, 2), (returning, None)) == ["a", 2, None]
    assert rt.run() == []


def test_task_error_propagates_with_name_and_traceback(rt: critsec.Runtime) -> None:
    with pytest.raises(critsec.TaskError) as caught:
        go(rt, (returning, 1), (failing, "boom"))
    error = caught.value
    assert error.task == "failing"
    assert "ValueError: boom" in error.summary
    assert "raise ValueError(message)" in error.details  # the task's own traceback
    assert isinstance(error.__cause__, ValueError)


def test_bad_arguments_rejected(rt: critsec.Runtime) -> None:
    with pytest.raises(TypeError):
        rt.queue("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rt.counter(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rt.run(critsec.task(print), timeout=0)
    q = rt.queue(1)
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_unknown_runtime_lists_valid_names() -> None:
    with pytest.raises(ValueError) as caught:
        critsec.runtime("fibers")
    for name in ("threads", "processes", "coroutines", "asyncio"):
        assert name in str(caught.value)
