"""The explorer's controlled primitives (``critsec.explorer._patches``) at
their edges: errors that match the standard library's, non-blocking and
zero-timeout waits, the virtual clock in ``setup``, what a deadlock report
says of a lock whose holder is gone, and the real primitives that the
same classes hand out when no schedule controls the caller.

Every program is explored exhaustively (``dfs``) or has a single schedule,
so each test sees the same runs every time; nothing sleeps for real.
"""

from __future__ import annotations

import _thread
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from critsec.explorer import explore
from critsec.explorer._patches import (
    Condition,
    Lock,
    RLock,
    SimpleQueue,
    UncontrolledPrimitive,
    check_controlled,
    monotonic,
    sleep,
)


@dataclass
class Shared:
    lock: Any = None
    cond: Any = None
    seen: list[Any] = field(default_factory=list)


def with_lock() -> Shared:
    return Shared(lock=threading.Lock())


def with_rlock() -> Shared:
    return Shared(lock=threading.RLock())


def with_condition() -> Shared:
    return Shared(cond=threading.Condition())


def passes(_: Shared) -> bool:
    return True


def explore_one(setup: Any, *tasks: Any) -> Any:
    return explore(setup, list(tasks), passes, strategy="dfs", max_schedules=50)


def final_state(setup: Any, task: Any) -> Shared:
    """The state after the one schedule of a one-task program that passes."""
    kept: list[Shared] = []

    def keep(s: Shared) -> bool:
        kept.append(s)
        return True

    result = explore(setup, [task], keep, strategy="dfs")
    assert not result.failed, result
    assert result.schedules == len(kept) == 1
    return kept[0]


def test_a_held_lock_is_not_taken_without_waiting_and_reports_as_locked() -> None:
    def holder(s: Shared) -> None:
        assert s.lock.acquire()
        s.seen.append((s.lock.locked(), s.lock.acquire(blocking=False), s.lock.acquire(timeout=0)))
        s.seen.append(repr(s.lock))
        s.lock.release()
        s.seen.append((s.lock.locked(), repr(s.lock)))

    assert final_state(with_lock, holder).seen == [
        (True, False, False),
        "<controlled Lock #1, locked by task 'holder'>",
        (False, "<controlled Lock #1, unlocked>"),
    ]


def test_releasing_an_unlocked_lock_raises_as_threading_does() -> None:
    def release_twice(s: Shared) -> None:
        s.lock.acquire()
        s.lock.release()
        s.lock.release()

    result = explore_one(with_lock, release_twice)
    assert result.kind == "exception"
    assert "RuntimeError: release unlocked lock" in result.message


def test_an_rlock_counts_its_owner_and_refuses_anyone_else() -> None:
    def owner(s: Shared) -> None:
        with s.lock, s.lock:  # the owner takes it again
            s.seen.append("in")
        s.seen.append(s.lock.acquire(blocking=False))  # free again
        s.lock.release()

    def stranger(s: Shared) -> None:
        s.lock.release()  # never acquired by this task

    result = explore_one(with_rlock, owner)
    assert not result.failed, result
    refused = explore_one(with_rlock, stranger)
    assert refused.kind == "exception"
    assert "RuntimeError: cannot release un-acquired lock" in refused.message


def test_a_lock_kept_by_a_finished_task_is_named_in_the_deadlock() -> None:
    def keeps(s: Shared) -> None:
        s.lock.acquire()  # and never releases it

    def waits(s: Shared) -> None:
        s.seen.append(0)
        s.lock.acquire()

    result = explore_one(with_lock, keeps, waits)
    assert result.kind == "deadlock"
    assert "held by task 'keeps', which finished without releasing it" in result.message


def test_condition_wait_needs_the_lock_and_a_zero_timeout_does_not_wait() -> None:
    def unowned(s: Shared) -> None:
        s.cond.wait()

    def no_wait(s: Shared) -> None:
        with s.cond:
            s.seen.append(s.cond.wait(0))
            s.seen.append(s.cond.wait(timeout=-1))
            s.seen.append(repr(s.cond))

    refused = explore_one(with_condition, unowned)
    assert refused.kind == "exception"
    assert "RuntimeError: cannot wait on un-acquired lock" in refused.message

    seen = final_state(with_condition, no_wait).seen
    assert seen[:2] == [False, False]  # nobody notified: no wait, not woken
    assert seen[2].startswith("<controlled Condition #1(<controlled Condition #1")


def test_notify_all_wakes_every_waiter_in_every_schedule() -> None:
    def waiter(s: Shared) -> None:
        with s.cond:
            s.seen.append("waiting")
            while "go" not in s.seen:
                s.cond.wait()
            s.seen.append("woken")

    def waker(s: Shared) -> None:
        with s.cond:
            s.seen.append("go")
            s.cond.notify_all()

    result = explore(
        with_condition,
        [waiter, waiter, waker],
        lambda s: s.seen.count("woken") == 2,
        strategy="dfs",
        preemption_bound=1,
    )
    assert not result.failed, result
    assert result.exhausted


def test_sleep_in_setup_moves_the_virtual_clock_and_negative_sleeps_raise() -> None:
    clocks: list[float] = []

    def setup() -> Shared:
        start = time.monotonic()
        time.sleep(100)  # no task to run meanwhile: the clock jumps
        clocks.append(time.monotonic() - start)
        return Shared()

    def negative(s: Shared) -> None:
        time.sleep(-1)

    result = explore(setup, [negative], passes, strategy="dfs")
    assert clocks == [100]
    assert result.kind == "exception"
    assert "ValueError: sleep length must be non-negative" in result.message


def test_setup_cannot_wait_for_a_held_lock_but_a_timed_wait_times_out_at_once() -> None:
    outcomes: list[bool] = []

    def setup() -> Shared:
        lock = threading.Lock()
        lock.acquire()
        outcomes.append(lock.acquire(timeout=10))
        lock.release()
        return Shared(lock=lock)

    result = explore(setup, [lambda s: None], passes, strategy="dfs")
    assert not result.failed, result
    assert outcomes == [False]


# -- outside any schedule: the real primitives -----------------------------------------


def test_outside_a_schedule_the_controlled_classes_make_real_primitives() -> None:
    lock = Lock()
    assert isinstance(lock, _thread.LockType)
    assert type(RLock()) is type(threading.RLock())
    assert type(Condition()) is threading.Condition
    plain: Any = SimpleQueue()
    assert type(plain) is queue.SimpleQueue
    plain.put(1)
    assert plain.get_nowait() == 1
    before = monotonic()
    sleep(0)
    assert monotonic() >= before  # the real clock, and a real (empty) sleep


def test_check_controlled_refuses_real_primitives_and_what_is_built_on_them() -> None:
    with pytest.raises(UncontrolledPrimitive, match="this lock was made outside"):
        check_controlled(threading.Lock())
    with pytest.raises(UncontrolledPrimitive, match="lock was made outside"):
        check_controlled(threading.RLock())
    with pytest.raises(UncontrolledPrimitive, match="this Queue was made outside"):
        check_controlled(queue.Queue())
    with pytest.raises(UncontrolledPrimitive, match="this Event was made outside"):
        check_controlled(threading.Event())
    with pytest.raises(UncontrolledPrimitive, match=r"in setup\(\)"):
        check_controlled(threading.Semaphore())
    # Anything else passes, and so do objects of those modules with nothing
    # real inside or without a __dict__.
    for harmless in (1, "text", [threading.Lock()], object(), threading.local()):
        check_controlled(harmless)
    check_controlled(queue.SimpleQueue())  # the C one: no __dict__ to hold a lock


# -- locks made at import time ---------------------------------------------------------
# Module globals made when this file was imported, as a program makes them:
# the most common pattern there is. The explorer stands in for them while a
# schedule runs and puts them back after.

MODULE_LOCK = threading.Lock()
MODULE_RLOCK = threading.RLock()


def locked_bump(state: dict[str, int]) -> None:
    with MODULE_LOCK:
        value = state["n"]
        state["n"] = value + 1


def reentrant_bump(state: dict[str, int]) -> None:
    with MODULE_RLOCK, MODULE_RLOCK:
        value = state["n"]
        state["n"] = value + 1


def racy_bump(state: dict[str, int]) -> None:
    value = state["n"]  # read outside the lock: a lost update
    with MODULE_LOCK:
        state["n"] = value + 1


def two_bumps(bump: Any, **options: Any) -> Any:
    return explore(lambda: {"n": 0}, [bump, bump], lambda s: s["n"] == 2, **options)


@pytest.mark.parametrize("bump", [locked_bump, reentrant_bump])
def test_a_lock_made_at_import_time_is_stood_in_for_and_put_back(bump: Any) -> None:
    real_lock, real_rlock = MODULE_LOCK, MODULE_RLOCK
    result = two_bumps(bump, strategy="dfs")
    assert not result.failed, result  # no UncontrolledPrimitive: no false alarm
    assert result.exhausted
    assert MODULE_LOCK is real_lock and MODULE_RLOCK is real_rlock
    assert _free_now(MODULE_LOCK) and _free_now(MODULE_RLOCK)


def test_a_race_beside_a_lock_made_at_import_time_is_found() -> None:
    result = two_bumps(racy_bump, strategy="dfs")
    assert result.failed and result.kind == "invariant", result
    assert MODULE_LOCK is globals()["MODULE_LOCK"] and _free_now(MODULE_LOCK)


def test_a_lock_held_when_the_schedule_starts_stays_real_and_is_refused() -> None:
    MODULE_LOCK.acquire()  # held by this thread: the explorer must not pretend otherwise
    try:
        result = two_bumps(locked_bump, strategy="random", max_schedules=1)
    finally:
        MODULE_LOCK.release()
    assert result.failed and "made outside the explored schedule" in result.message


def _free_now(lock: Any) -> bool:
    if not lock.acquire(False):
        return False
    lock.release()
    return True
