"""The coroutines runtime's C hot paths (``_ccoroutines.c``) against the
Python they stand in for.

The scheduler's round-robin loop is taken in C when a run has no timeout;
the Python loop in ``CoroutinesRuntime._schedule`` is the reference and
takes every step when ``_round_robin`` is None. Random programs of generator
tasks (a lock held across a yield, a bounded queue, timed waits, failures)
run under the C loop with the C lock and under the Python loop with a lock
of no C at all (``PythonLock``: ``_core.LockCore`` driven as every other
cooperative primitive is), and must interleave identically, step by step.
The lock's edge cases are checked against ``threading.Lock``'s behaviour.
"""

from __future__ import annotations

import gc
import random
import sys
import weakref
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import critsec
from critsec.runtimes import _coroutines
from critsec.runtimes._core import UNLOCKED, LockCore
from critsec.runtimes._coroutines import CoroutineLock, Park, Parking, Waiting, _Running

rt: Any = critsec.runtime("coroutines")


# -- random programs: both loops, one interleaving ------------------------------------


class _PythonHeld:
    def __init__(self, lock: PythonLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class PythonLock(Parking, LockCore):
    """The coroutines lock with no C at all: _core.LockCore's algorithm
    driven by Parking, as every other cooperative primitive is. The
    reference for LockBase: a woken waiter that finds the lock taken again
    is resumed and parks anew, where LockBase puts it back unresumed."""

    def __init__(self) -> None:
        self._init_waiters(UNLOCKED)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> Waiting[bool]:
        return Waiting(self._wait(self._acquire_steps(blocking, timeout)), "lock.acquire()")

    def release(self) -> None:
        self._release()

    def __iter__(self) -> Generator[Park, None, _PythonHeld]:
        yield from self._wait(self._acquire_steps(True, -1))
        return _PythonHeld(self)


def _program(seed: int, make_lock: Any = rt.lock) -> tuple[list[Any], list[str], dict[str, Any]]:
    """Tasks made from ``seed``: each step of each task is one of: a bare
    yield, an update with a yield inside a critical section (under the lock
    or not), a put on a bounded queue, a timed acquire (60 s: every holder
    lets go within a step, so it never sleeps) or one that gives up at once,
    a non-waiting get. Then each task gets its share of the items put; a
    non-waiting get that took one leaves a getter waiting for ever, which
    ends the run as a deadlock. Every step appends what it saw to ``log``."""
    rng = random.Random(seed)
    lock, q, counter = make_lock(), rt.queue(rng.choice([1, 2, 3])), rt.counter(0)
    log: list[str] = []
    tasks = rng.randint(2, 4)
    plans = [[rng.choice("yluqtzn") for _ in range(rng.randint(1, 8))] for _ in range(tasks)]
    # Every item put is got: as many gets as puts overall, shared out.
    total_puts = sum(plan.count("q") for plan in plans)
    gets = [0] * tasks
    for _ in range(total_puts):
        gets[rng.randrange(tasks)] += 1
    fails = rng.random() < 0.2
    failing = rng.randrange(tasks)

    def task(i: int) -> Generator[Any, Any, str]:
        for step, what in enumerate(plans[i]):
            if what == "y":
                yield
            elif what in "lu":
                if what == "l":
                    with (yield from lock):
                        value = counter.value
                        yield
                        counter.value = value + 1
                else:
                    value = counter.value
                    yield
                    counter.value = value + 1
            elif what == "q":
                yield from q.put((i, step))
            elif what in "tz":
                got = yield from lock.acquire(timeout=60 if what == "t" else 0)
                log.append(f"{i} timed acquire {got}")
                if got:
                    yield
                    lock.release()
            else:
                try:
                    log.append(f"{i} nowait {q.get_nowait()}")
                except critsec.Empty:
                    log.append(f"{i} nowait empty")
            log.append(f"{i} {step} {what} counter={counter.value} qsize={q.qsize()}")
            if fails and i == failing and step == len(plans[i]) // 2:
                raise ValueError(f"task {i} fails at step {step}")
        for _ in range(gets[i]):
            item = yield from q.get()
            log.append(f"{i} got {item}")
        return f"{i} done"

    return [critsec.task(task, i).named(f"t{i}") for i in range(tasks)], log, {"counter": counter}


def _run(seed: int, make_lock: Any = rt.lock) -> list[str]:
    tasks, log, state = _program(seed, make_lock)
    try:
        results = rt.run(*tasks)
        log.append(f"results {results} counter={state['counter'].value}")
    except (critsec.TaskError, critsec.DeadlockError) as exc:
        log.append(f"{type(exc).__name__}: {exc}")
    return log


def test_random_programs_interleave_identically_in_c_and_in_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = [_run(seed) for seed in range(300)]
    monkeypatch.setattr(_coroutines, "_round_robin", None)
    reference = [_run(seed, PythonLock) for seed in range(300)]
    for seed, (got, want) in enumerate(zip(fast, reference, strict=True)):
        assert got == want, f"seed {seed}"
    # The programs exercise what the C loop hands back: failures, waits
    # that time out or never end, and tasks parked while others run.
    text = "\n".join(line for log in fast for line in log)
    for seen in (
        "TaskError",
        "DeadlockError",
        "timed acquire False",
        "timed acquire True",
        " got ",
    ):
        assert seen in text


# -- the scheduler's steps, under both loops --------------------------------------


def test_a_task_that_fails_stops_the_run_and_keeps_its_traceback(coroutines_loop: str) -> None:
    def bad() -> Generator[None, None, None]:
        yield
        raise KeyError("boom")

    def forever() -> Generator[None, None, None]:
        while True:
            yield

    with pytest.raises(critsec.TaskError) as caught:
        rt.run(critsec.task(bad), critsec.task(forever))
    error = caught.value.__cause__ if caught.value.__cause__ else caught.value
    assert "boom" in str(caught.value)
    assert error is not None


def test_yielding_a_value_is_refused_under_both_loops(coroutines_loop: str) -> None:
    def odd() -> Generator[int, None, None]:
        yield 42

    with pytest.raises(TypeError, match=r"task 'odd' yielded 42"):
        rt.run(critsec.task(odd))


def test_a_forgotten_yield_from_fails_its_task_under_both_loops(coroutines_loop: str) -> None:
    lock = rt.lock()

    def forgetful() -> Generator[None, None, None]:
        lock.acquire()  # without `yield from`
        yield

    with pytest.raises(critsec.TaskError, match="without `yield from`"):
        rt.run(critsec.task(forgetful))


def test_keyboard_interrupt_in_a_task_propagates_and_closes_the_others(
    coroutines_loop: str,
) -> None:
    closed: list[str] = []

    def interrupted() -> Generator[None, None, None]:
        yield
        raise KeyboardInterrupt

    def other() -> Generator[None, None, None]:
        try:
            while True:
                yield
        finally:
            closed.append("other")

    with pytest.raises(KeyboardInterrupt):
        rt.run(critsec.task(interrupted), critsec.task(other))
    assert closed == ["other"]


def test_the_c_loop_refuses_a_live_list_of_strangers() -> None:
    from critsec.runtimes._ccoroutines import round_robin

    with pytest.raises(TypeError, match="not a _Running"):
        round_robin(["not a task"], 0, [])


# -- the lock's C half --------------------------------------------------------------


def test_release_of_an_unlocked_lock_raises_like_threading() -> None:
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        rt.lock().release()


def test_iter_takes_a_free_lock_and_stops_with_what_with_needs() -> None:
    lock = rt.lock()
    it = iter(lock)
    assert lock.locked()
    with pytest.raises(StopIteration) as stop:
        next(it)
    held = stop.value.value
    assert held is lock._held
    with held:
        pass
    assert not lock.locked()


def test_a_stop_iteration_kept_by_the_caller_is_not_reused() -> None:
    lock = rt.lock()
    kept = []
    for _ in range(3):
        try:
            next(iter(lock))
        except StopIteration as stop:
            kept.append(stop)
        lock.release()
    assert all(stop.value is lock._held for stop in kept)
    assert len({id(stop) for stop in kept}) == 3  # each one kept is its own


def test_with_calls_a_subclass_release() -> None:
    released: list[str] = []

    class Counting(CoroutineLock):
        def release(self) -> None:
            released.append("mine")
            super().release()

    lock = Counting()

    def task() -> Generator[Any, Any, None]:
        with (yield from lock):
            yield

    rt.run(critsec.task(task), critsec.task(task))
    assert released == ["mine", "mine"]


def test_a_fair_lock_is_not_taken_past_its_waiters() -> None:
    class Fair(CoroutineLock):
        _fair = True

    order: list[str] = []
    lock = Fair()

    def holder() -> Generator[Any, Any, None]:
        with (yield from lock):
            yield  # the waiter parks meanwhile
        with (yield from lock):  # free, but promised to the waiter: queue behind it
            order.append("holder")

    def waiter() -> Generator[Any, Any, None]:
        with (yield from lock):
            order.append("waiter")

    rt.run(critsec.task(holder), critsec.task(waiter))
    assert order == ["waiter", "holder"]


def _parked_on_a_lock() -> tuple[weakref.ref[Any], list[Generator[Any, Any, None]]]:
    """A holder and a waiter parked on a lock (lock -> waiter list -> park ->
    lock: a cycle through C fields); only the tasks are returned."""
    lock = rt.lock()

    def holder() -> Generator[Any, Any, None]:
        with (yield from lock):
            yield

    def waiter() -> Generator[Any, Any, None]:
        with (yield from lock):
            pass

    made = [holder(), waiter()]
    next(made[0]), next(made[1])
    assert lock._waiters[UNLOCKED]
    return weakref.ref(lock), made


def test_a_lock_with_a_parked_waiter_is_collected() -> None:
    gone, made = _parked_on_a_lock()
    assert gone() is not None
    for gen in made:
        gen.close()
    del made
    gc.collect()
    assert gone() is None


def test_the_records_behave_as_their_python_fields() -> None:
    owner = rt.lock()
    park = Park(owner, "lock released", None)
    assert (park.owner, park.condition, park.deadline, park.woken) == (
        owner,
        "lock released",
        None,
        False,
    )
    park.woken = True
    with pytest.raises(TypeError):
        park.woken = 1  # type: ignore[assignment]

    def gen() -> Iterator[None]:
        yield

    g = gen()
    running = _Running(0, "t", g)
    assert (running.index, running.name, running.generator, running.park) == (0, "t", g, None)
    assert running.ready(0.0)
    running.park = park
    assert running.ready(0.0)  # woken
    park.woken = False
    assert not running.ready(sys.float_info.max)
    assert "park=" in repr(running)
