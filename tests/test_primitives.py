"""One behavioural suite for the lock, counter and queue of every runtime.

Each test body is written once (see ``portable.py``) and runs on threads,
processes (fork and spawn), coroutines and asyncio. Nothing here sleeps or
measures time, and nothing is left to luck: a test that involves several
tasks either forces the interleaving it is about or, on threads, explores
every interleaving within a bound (``portable.play``). That this suite can
see broken primitives is itself tested: ``tests/mutation.py`` runs it
against each broken primitive of ``tests/mutants.py`` and wants every one
caught, every run.
"""

from __future__ import annotations

import asyncio
import queue
from collections import Counter
from typing import Any

import pytest

import critsec

import interleave
from portable import BLOCKED, Scenario, event, go, hang_timeout, play, probe, runs_processes

# -- task bodies (module level: the processes runtime pickles them) ---------


def exclusive_worker(
    ops: Any, lock: Any, inside: Any, violations: Any, me: Any, others: list[Any]
) -> Any:
    me.announce()
    yield from ops.acquire(lock)
    me.passed()
    try:
        if inside.add(1) != 1:
            violations.add(1)
        # Stay inside until every other worker is blocked at the lock -- or,
        # if the lock excludes nothing, in here too.
        for other in others:
            yield from ops.blocked(other)
        yield  # a switch point inside the critical section
        inside.add(-1)
    finally:
        lock.release()
    return "left"


def holder(ops: Any, lock: Any, held: Any, contender: Any, released: Any) -> Any:
    yield from ops.acquire(lock)
    held.set()
    blocked = yield from ops.blocked(contender)  # the contender waits behind us
    released.set()
    lock.release()
    return blocked


def contender(ops: Any, lock: Any, held: Any, me: Any, released: Any) -> Any:
    yield from ops.wait(held)
    seen = {"locked": lock.locked()}
    seen["nonblocking"] = yield from ops.acquire(lock, False)
    if seen["nonblocking"]:
        lock.release()
    me.announce()
    yield from ops.acquire(lock)
    me.passed()
    seen["after_release"] = released.is_set()
    lock.release()
    return seen


def locked_updates(
    ops: Any, lock: Any, counter: Any, n: int, delta: int, me: Any, other: Any
) -> Any:
    for i in range(n):
        if i == 0:
            me.announce()
        yield from ops.acquire(lock)
        try:
            value = counter.value
            if i == 0:
                me.passed()
                # The other task tries to update meanwhile: it must wait.
                yield from ops.blocked(other)
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


def producer(ops: Any, q: Any, items: list[Any], done: Any = None) -> Any:
    for item in items:
        yield from ops.put(q, item)
    if done is not None:
        done.set()
    return len(items)


def closer(ops: Any, q: Any, producers_done: list[Any], consumers: int) -> Any:
    # Once every producer is done, one end-of-work sentinel per consumer.
    for done in producers_done:
        yield from ops.wait(done)
    for _ in range(consumers):
        yield from ops.put(q, None)
    return "closed"


def consumer(ops: Any, q: Any, limit: int = -1, done: bool = False) -> Any:
    got: list[Any] = []
    while limit < 0 or len(got) < limit:
        try:
            item = yield from ops.get(q)
        except critsec.ShutDown:
            break
        if item is None:  # a sentinel
            break
        got.append(item)
        if done:
            q.task_done()
        yield
    return got


def drain_after(ops: Any, q: Any, closed: Any) -> Any:
    yield from ops.wait(closed)
    got: list[Any] = []
    while True:
        try:
            got.append((yield from ops.get(q)))
        except critsec.ShutDown:
            return got
        yield


def put_then_shut_down(ops: Any, q: Any, items: list[Any], closed: Any) -> Any:
    for item in items:
        yield from ops.put(q, item)
    q.shutdown()
    closed.set()
    return "shut"


def put_expecting_shutdown(ops: Any, q: Any, item: Any, me: Any) -> Any:
    me.announce()
    try:
        yield from ops.put(q, item)
    except critsec.ShutDown as exc:
        return ("shutdown", isinstance(exc, critsec.CritsecError))
    finally:
        me.passed()
    return "put"


def get_expecting_shutdown(ops: Any, q: Any, me: Any = None, after: Any = None) -> Any:
    if after is not None:
        # One waiter at a time: a getter announced while another holds the
        # queue's mutex could be seen "blocked" on that mutex.
        yield from ops.blocked(after)
    if me is not None:
        me.announce()
    try:
        item = yield from ops.get(q)
    except critsec.ShutDown:
        return "shutdown"
    finally:
        if me is not None:
            me.passed()
    return ("got", item)


def shut_down_when_blocked(ops: Any, q: Any, immediate: bool, waiters: list[Any]) -> Any:
    for waiter in waiters:
        yield from ops.blocked(waiter)  # let every waiter block first
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


#: Explorer options for the queue scenarios on threads. Switching inside the
#: queue's own code makes every schedule long and dfs's count of schedules
#: (even within one preemption) run into the thousands: PCT samples them
#: instead, the same schedules every run (check's seed 0).
SAMPLE = {"strategy": "pct", "max_schedules": 100}


def small(rt: critsec.Runtime[Any, Any], explored: int, run: int) -> int:
    """A size for a scenario: small under the explorer (threads), which
    tries every schedule; the lesson's size where a run is one schedule."""
    return explored if rt.name == "threads" else run


# -- the lock --------------------------------------------------------------


def lock_exclusion(rt: critsec.Runtime[Any, Any]) -> Scenario:
    # Workers take the lock and stay inside until every other one is
    # blocked at it: only one may ever be inside at a time.
    lock, inside, violations = rt.lock(), rt.counter(0), rt.counter(0)
    probes = [probe(rt) for _ in range(small(rt, 2, 3))]
    calls = [
        (exclusive_worker, lock, inside, violations, me, [p for p in probes if p is not me])
        for me in probes
    ]

    def check(results: list[Any]) -> None:
        assert results == ["left"] * len(probes)
        assert violations.value == 0
        assert inside.value == 0
        assert not lock.locked()

    return Scenario(calls, check)


def test_lock_excludes(rt: critsec.Runtime[Any, Any]) -> None:
    play(rt, lock_exclusion)


def lock_held_by_another(rt: critsec.Runtime[Any, Any]) -> Scenario:
    lock, held, released, waiting = rt.lock(), event(rt), event(rt), probe(rt)

    def check(results: list[Any]) -> None:
        blocked, seen = results
        # While one task holds it, another sees it locked, cannot take it,
        # and waits for it until it is released.
        assert seen == {"locked": True, "nonblocking": False, "after_release": True}
        assert blocked in BLOCKED
        assert not lock.locked()

    return Scenario(
        [
            (holder, lock, held, waiting, released),
            (contender, lock, held, waiting, released),
        ],
        check,
    )


def test_lock_held_by_one_task_is_seen_by_another(rt: critsec.Runtime[Any, Any]) -> None:
    play(rt, lock_held_by_another)


def test_lock_basics(rt: critsec.Runtime[Any, Any]) -> None:
    lock = rt.lock()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    assert not lock.locked()


def lock_and_queue_timeouts(rt: critsec.Runtime[Any, Any]) -> Scenario:
    lock, q = rt.lock(), rt.queue(1)

    def check(results: list[Any]) -> None:
        assert results == [
            {"lock_timeout": False, "lock_nonblocking": False, "get": "empty", "put": "full"}
        ]
        assert not lock.locked()

    # A lock that ignores its timeout waits for itself forever.
    return Scenario([(timeouts, lock, q)], check, timeout=hang_timeout(rt))


def test_lock_timeouts_and_queue_timeouts(rt: critsec.Runtime[Any, Any]) -> None:
    play(rt, lock_and_queue_timeouts)


# -- the counter -----------------------------------------------------------


def counter_with_lock(rt: critsec.Runtime[Any, Any]) -> Scenario:
    # The lesson: +1 n times and -1 n+1 times from 10, under a lock, is 9.
    # In the first round each task reads, then waits until the other one
    # tried to get in too: without exclusion both have read the same value.
    n = small(rt, 1, 1 if runs_processes(rt) else 300)
    lock, counter = rt.lock(), rt.counter(10)
    a, b = probe(rt), probe(rt)

    def check(results: list[Any]) -> None:
        assert counter.value == 9

    return Scenario(
        [
            (locked_updates, lock, counter, n, 1, a, b),
            (locked_updates, lock, counter, n + 1, -1, b, a),
        ],
        check,
    )


def test_counter_exact_with_lock(rt: critsec.Runtime[Any, Any]) -> None:
    play(rt, counter_with_lock)


def atomic_add(rt: critsec.Runtime[Any, Any]) -> Scenario:
    n = small(rt, 1, 500)
    counter = rt.counter(10)

    def check(results: list[Any]) -> None:
        assert counter.value == 9
        assert counter.add(5) == 14

    return Scenario([(atomic_adds, counter, n, 1), (atomic_adds, counter, n + 1, -1)], check)


def test_counter_add_is_atomic(rt: critsec.Runtime[Any, Any]) -> None:
    if not runs_processes(rt):
        play(rt, atomic_add)
        return
    # Processes: another process tries its add at every line of this one's.
    if not interleave.CAN_SEE_BLOCKED:
        pytest.skip(interleave.WHY_NOT)
    rounds = interleave.add_at_every_line(rt, rt.counter(10))
    lost = [r for r in rounds if r.after - r.before != 1 + 2]
    assert not lost, f"updates lost while the other add paused at: {lost}"
    # The add is one compare-and-swap, no lock: the other add goes through
    # whichever line of this one it interrupts (and a read-then-write add
    # loses the other's update at the line between its read and its write).
    # The pauses covered the call's lines.
    assert len(rounds) >= 2, rounds


@pytest.mark.parametrize("name", ["coroutines", "asyncio"])
def test_unlocked_switch_in_critical_section_loses_updates(name: str) -> None:
    # Cooperative runtimes switch only where the task says so, so a switch
    # between read and write loses updates on every run, not by luck.
    rt = critsec.runtime(name)
    counter = rt.counter(10)
    go(rt, (unlocked_updates, counter, 100, 1), (unlocked_updates, counter, 101, -1))
    assert counter.value != 9


def test_counter_value_is_read_write(rt: critsec.Runtime[Any, Any]) -> None:
    counter = rt.counter()
    assert counter.value == 0
    counter.value = 41
    counter.value += 1
    assert counter.value == 42


# -- the queue -------------------------------------------------------------


def fifo_through_a_small_bound(rt: critsec.Runtime[Any, Any]) -> Scenario:
    q = rt.queue(small(rt, 2, 3))
    items = list(range(small(rt, 4, 60)))

    def check(results: list[Any]) -> None:
        produced, consumed = results
        assert produced == len(items)
        assert consumed == items
        assert q.empty()

    return Scenario([(producer, q, items), (consumer, q, len(items))], check, explore=SAMPLE)


def test_queue_fifo_through_a_small_bound(rt: critsec.Runtime[Any, Any]) -> None:
    play(rt, fifo_through_a_small_bound)


def test_queue_bounds(rt: critsec.Runtime[Any, Any]) -> None:
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


def test_unbounded_queue_is_never_full(rt: critsec.Runtime[Any, Any]) -> None:
    q = rt.queue()
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full() and q.qsize() == 1000
    assert [q.get_nowait() for _ in range(1000)] == list(range(1000))
    assert q.empty()


def test_shutdown_drains_then_raises(rt: critsec.Runtime[Any, Any]) -> None:
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


def test_shutdown_immediate_discards(rt: critsec.Runtime[Any, Any]) -> None:
    q = rt.queue()
    for i in range(3):
        q.put_nowait(i)
    q.shutdown(immediate=True)
    assert q.qsize() == 0
    with pytest.raises(critsec.ShutDown):
        q.get_nowait()
    # The discarded items count as done: join() returns at once.
    assert go(rt, (joiner, q)) == [None]


def consumers_drain_a_shut_down_queue(rt: critsec.Runtime[Any, Any]) -> Scenario:
    # Consumers in other tasks see the shutdown and the items left behind:
    # together they take every item once, then each gets ShutDown.
    q, closed = rt.queue(), event(rt)
    items = list(range(small(rt, 2, 20)))

    def check(results: list[Any]) -> None:
        assert results[0] == "shut"
        assert sorted(item for got in results[1:] for item in got) == items
        assert q.empty()

    return Scenario(
        [
            (put_then_shut_down, q, items, closed),
            (drain_after, q, closed),
            (drain_after, q, closed),
        ],
        check,
        explore=SAMPLE,
    )


def test_shutdown_lets_consumers_drain(rt: critsec.Runtime[Any, Any]) -> None:
    play(rt, consumers_drain_a_shut_down_queue)


def blocked_putter(rt: critsec.Runtime[Any, Any], immediate: bool) -> Scenario:
    q, putting = rt.queue(1), probe(rt)
    q.put_nowait("fills the queue")

    def check(results: list[Any]) -> None:
        assert results == [("shutdown", True), "shut"]
        if immediate:
            assert q.qsize() == 0
        else:
            assert q.get_nowait() == "fills the queue"

    return Scenario(
        [
            (put_expecting_shutdown, q, "blocked", putting),
            (shut_down_when_blocked, q, immediate, [putting]),
        ],
        check,
        timeout=hang_timeout(rt),
    )


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_putter(rt: critsec.Runtime[Any, Any], immediate: bool) -> None:
    play(rt, lambda rt: blocked_putter(rt, immediate))


def blocked_getters(rt: critsec.Runtime[Any, Any], immediate: bool) -> Scenario:
    q, first, second = rt.queue(), probe(rt), probe(rt)

    def check(results: list[Any]) -> None:
        assert results == ["shutdown", "shutdown", "shut"]

    return Scenario(
        [
            (get_expecting_shutdown, q, first),
            (get_expecting_shutdown, q, second, first),
            (shut_down_when_blocked, q, immediate, [first, second]),
        ],
        check,
        # Getters nobody wakes wait forever.
        timeout=hang_timeout(rt),
        explore=SAMPLE,
    )


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_getters(rt: critsec.Runtime[Any, Any], immediate: bool) -> None:
    play(rt, lambda rt: blocked_getters(rt, immediate))


def join_after_task_done(rt: critsec.Runtime[Any, Any]) -> Scenario:
    n = small(rt, 2, 20)
    q, processed = rt.queue(), rt.counter(0)
    for i in range(n):
        q.put_nowait(i)

    def check(results: list[Any]) -> None:
        # join() may return only after every item was taken *and* marked done.
        seen_by_joiner, _ = results
        assert seen_by_joiner == n
        assert q.empty()
        with pytest.raises(ValueError, match="too many times"):
            q.task_done()

    return Scenario([(joiner, q, processed), (worker_marking_done, q, processed, n)], check)


def test_join_waits_for_task_done(rt: critsec.Runtime[Any, Any]) -> None:
    play(rt, join_after_task_done)


def producers_and_consumers(rt: critsec.Runtime[Any, Any]) -> Scenario:
    producers, consumers, per_producer = small(rt, 2, 3), small(rt, 2, 3), small(rt, 2, 150)
    q = rt.queue(small(rt, 2, 4))
    batches = [[(p, i) for i in range(per_producer)] for p in range(producers)]
    done = [event(rt) for _ in batches]

    def check(results: list[Any]) -> None:
        assert results[:producers] == [per_producer] * producers
        assert results[producers] == "closed"
        taken = [item for got in results[producers + 1 :] for item in got]
        assert Counter(map(tuple, taken)) == Counter(item for batch in batches for item in batch)
        # Each producer's items arrive in its own order (FIFO per producer).
        for got in results[producers + 1 :]:
            for p in range(producers):
                mine = [tuple(item) for item in got if item[0] == p]
                assert mine == sorted(mine)
        assert q.empty()

    return Scenario(
        [
            *[(producer, q, batch, ev) for batch, ev in zip(batches, done, strict=True)],
            (closer, q, done, consumers),
            *[(consumer, q) for _ in range(consumers)],
        ],
        check,
        explore=SAMPLE,
    )


def test_many_producers_and_consumers_lose_and_duplicate_nothing(
    rt: critsec.Runtime[Any, Any],
) -> None:
    play(rt, producers_and_consumers)


# -- running tasks ---------------------------------------------------------


def test_results_in_task_order(rt: critsec.Runtime[Any, Any]) -> None:
    assert go(rt, (returning, "a"), (returning, 2), (returning, None)) == ["a", 2, None]
    assert rt.run() == []


def test_task_error_propagates_with_name_and_traceback(rt: critsec.Runtime[Any, Any]) -> None:
    with pytest.raises(critsec.TaskError) as caught:
        go(rt, (returning, 1), (failing, "boom"))
    error = caught.value
    assert error.task == "failing"
    assert "ValueError: boom" in error.summary
    assert "raise ValueError(message)" in error.details  # the task's own traceback
    assert isinstance(error.__cause__, ValueError)


def test_bad_arguments_rejected(rt: critsec.Runtime[Any, Any]) -> None:
    # (What maxsize <= 0 means is the standard library's business: not tested here.)
    with pytest.raises(TypeError):
        rt.queue(maxsize="3")  # type: ignore[arg-type]  # (redis: rt.queue("3") names a queue)
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
