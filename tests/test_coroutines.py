"""The coroutines runtime: generator tasks that switch only at ``yield``.

The shared suite (test_primitives.py) holds this runtime to the common
behaviour; these tests pin what only a scheduler that sees every switch can
promise: exact interleavings, reproducible random orders, and deadlock
reports. Nothing sleeps: a task lets the others run by yielding. Each test
runs under the scheduler's C loop and under the Python loop it stands in
for (the ``coroutines_loop`` fixture).
"""

from __future__ import annotations

import functools
import queue
import time
from collections.abc import Generator
from typing import Any

import pytest

import critsec
from critsec.runtimes._coroutines import CoroutineLock, CoroutinesRuntime

Gen = Generator[Any, None, Any]

pytestmark = pytest.mark.usefixtures("coroutines_loop")


def coroutines(**options: Any) -> CoroutinesRuntime:
    rt = critsec.runtime("coroutines", **options)
    assert isinstance(rt, CoroutinesRuntime)
    return rt


# -- the lesson: where the yield is decides everything ------------------------


def read_yield_write(counter: Any, n: int, delta: int) -> Gen:
    for _ in range(n):
        value = counter.value
        yield  # a switch between the read and the write: the critical section is broken
        counter.value = value + delta


def yield_then_update(counter: Any, n: int, delta: int) -> Gen:
    for _ in range(n):
        yield  # the only switch point is outside the critical section
        counter.value += delta


def locked_read_yield_write(lock: Any, counter: Any, n: int, delta: int) -> Gen:
    for _ in range(n):
        with (yield from lock):
            value = counter.value
            yield
            counter.value = value + delta


@pytest.mark.parametrize("n", [1, 7, 100])
def test_yield_inside_critical_section_loses_updates_exactly(n: int) -> None:
    # Round-robin: each task reads, then the other reads the same value; each
    # write is then overwritten by the other's. Task 1 reads 10, 11, 12, ...
    # (its own writes), task 2 reads 10, 9, 8, ...; task 2 writes last, so
    # every +1 is lost: 10 - n, on every run.
    rt = coroutines()
    counter = rt.counter(10)
    rt.run(
        critsec.task(read_yield_write, counter, n, 1),
        critsec.task(read_yield_write, counter, n, -1),
    )
    assert counter.value == 10 - n


@pytest.mark.parametrize("options", [{}, {"order": "random", "seed": 3}])
def test_yields_outside_critical_section_need_no_lock(options: dict[str, Any]) -> None:
    rt = coroutines(**options)
    counter = rt.counter(10)
    rt.run(
        critsec.task(yield_then_update, counter, 500, 1),
        critsec.task(yield_then_update, counter, 501, -1),
    )
    assert counter.value == 9


def test_lock_repairs_yield_inside_critical_section() -> None:
    rt = coroutines()
    lock, counter = rt.lock(), rt.counter(10)
    rt.run(
        critsec.task(locked_read_yield_write, lock, counter, 100, 1),
        critsec.task(locked_read_yield_write, lock, counter, 101, -1),
    )
    assert counter.value == 9
    assert not lock.locked()


# -- the lock -----------------------------------------------------------------


def test_lock_held_across_yields_makes_the_other_wait() -> None:
    rt = coroutines()
    lock = rt.lock()
    log: list[str] = []

    def holder() -> Gen:
        with (yield from lock):
            log.append("holder in")
            for i in range(3):
                yield
                log.append(f"holder still in {i}")
        log.append("holder out")

    def waiter() -> Gen:
        log.append(f"waiter sees locked={lock.locked()}")
        ok = yield from lock.acquire()
        log.append(f"waiter in ({ok})")
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


def contenders(lock: Any, log: list[str], name: str, rounds: int) -> Gen:
    """Takes the lock in every way there is, switching inside and outside."""
    for i in range(rounds):
        with (yield from lock):
            log.append(f"{name} in {i}")
            for _ in range(i % 3):
                yield
        if i % 2:
            yield
        if (yield from lock.acquire(timeout=30)):
            log.append(f"{name} timed in {i}")
            yield
            lock.release()
        got = yield from lock.acquire(blocking=False)
        log.append(f"{name} tried {i}: {got}")
        if got:
            if i % 2:
                yield
            lock.release()


@pytest.mark.parametrize("options", [{}, *({"order": "random", "seed": s} for s in range(8))])
def test_a_woken_waiter_that_would_find_the_lock_taken_again_is_parked_unseen(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scheduler parks such a waiter again without resuming it
    # (CoroutineLock._rewait): that must change nothing a task can see --
    # the same acquisitions in the same order as when it is resumed, finds
    # the lock held and waits again itself.
    def run() -> list[str]:
        rt, log = coroutines(**options), list[str]()
        lock = rt.lock()
        rt.run(*(critsec.task(contenders, lock, log, name, 9).named(name) for name in "abc"))
        return log

    reparked = run()
    monkeypatch.setattr(CoroutineLock, "_rewait", lambda self, park: False)
    resumed = run()
    assert reparked == resumed
    assert len(reparked) == 3 * 9 * 3  # every task took every turn


def test_a_woken_waiter_whose_time_ran_out_is_resumed_and_gives_up() -> None:
    # Its wake-up is not taken back when the lock is taken again before its
    # turn: it runs, sees its time ran out, and returns False at once.
    rt = coroutines()
    lock = rt.lock()
    log: list[str] = []

    def holder() -> Gen:
        with (yield from lock):
            yield  # the waiter parks, with a deadline 10 ms away
            until = time.monotonic() + 0.02
            while time.monotonic() < until:  # past it, without a switch
                pass
        with (yield from lock):  # released (the waiter is woken) and taken again
            yield
            log.append("holder out")

    def waiter() -> Gen:
        log.append(f"waiter got it: {(yield from lock.acquire(timeout=0.01))}")

    rt.run(holder, waiter)
    assert log == ["waiter got it: False", "holder out"]


def test_non_waiting_acquire_and_timeout_give_up() -> None:
    rt = coroutines()
    lock = rt.lock()
    gave_up: list[bool] = []

    def holder() -> Gen:
        with (yield from lock):
            while len(gave_up) < 2:  # hold the lock, switching, until the other gave up
                yield

    def impatient() -> Gen:
        gave_up.append((yield from lock.acquire(blocking=False)))
        gave_up.append((yield from lock.acquire(timeout=0.05)))

    rt.run(holder, impatient)
    assert gave_up == [False, False]
    assert not lock.locked()


def test_plain_with_takes_a_free_lock_and_refuses_a_held_one() -> None:
    rt = coroutines()
    lock = rt.lock()
    with lock:
        assert lock.locked()
        with pytest.raises(RuntimeError, match=r"with \(yield from lock\)"), lock:
            pass  # pragma: no cover - never entered
        assert lock.locked()  # the refused `with` did not release it
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()


def test_lock_acquire_validates_like_threading() -> None:
    rt = coroutines()
    lock = rt.lock()

    def bad_timeout() -> Gen:
        return (yield from lock.acquire(blocking=False, timeout=1))

    with pytest.raises(critsec.TaskError) as caught:
        rt.run(bad_timeout)
    assert isinstance(caught.value.__cause__, ValueError)


# -- the queue ----------------------------------------------------------------


def test_full_queue_makes_the_putter_wait() -> None:
    def run(maxsize: int) -> list[str]:
        rt = coroutines()
        q = rt.queue(maxsize)
        log: list[str] = []

        def producer() -> Gen:
            for i in range(3):
                yield from q.put(i)
                log.append(f"put {i}")

        def consumer() -> Gen:
            for _ in range(3):
                item = yield from q.get()
                log.append(f"got {item}")

        rt.run(producer, consumer)
        return log

    # Unbounded, the producer never waits, so it never switches.
    assert run(0) == ["put 0", "put 1", "put 2", "got 0", "got 1", "got 2"]
    # With room for one item, each put after the first waits for a get.
    assert run(1) == ["put 0", "got 0", "put 1", "got 1", "put 2", "got 2"]


def test_queue_timeouts_raise_full_and_empty() -> None:
    rt = coroutines()
    q = rt.queue(1)
    results = []

    def alone() -> Gen:
        # No other task: the scheduler waits for the deadline itself.
        try:
            yield from q.get(timeout=0.05)
        except queue.Empty:
            results.append("empty")
        q.put_nowait("x")
        try:
            yield from q.put("y", timeout=0.05)
        except queue.Full:
            results.append("full")

    rt.run(alone)
    assert results == ["empty", "full"]

    # The timed-out waits were withdrawn: they must not absorb the wake-up
    # meant for a later waiter.
    def putter() -> Gen:
        yield from q.put("z")

    def taker() -> Gen:
        yield
        return q.get_nowait()

    assert rt.run(putter, taker) == [None, "x"]
    assert q.get_nowait() == "z"


def test_join_returns_after_the_last_task_done() -> None:
    rt = coroutines()
    q = rt.queue()
    log: list[str] = []

    def boss() -> Gen:
        for i in range(2):
            q.put_nowait(i)
        yield from q.join()
        log.append("joined")

    def worker() -> Gen:
        for _ in range(2):
            item = yield from q.get()
            yield
            log.append(f"done {item}")
            q.task_done()

    rt.run(boss, worker)
    assert log == ["done 0", "done 1", "joined"]
    assert q.unfinished_tasks == 0


def test_shutdown_wakes_waiting_getter_and_putter() -> None:
    rt = coroutines()
    empty, full = rt.queue(), rt.queue(1)
    full.put_nowait("kept")
    outcomes: dict[str, str] = {}

    def getter() -> Gen:
        try:
            yield from empty.get()
        except critsec.ShutDown:
            outcomes["getter"] = "shut down"

    def putter() -> Gen:
        try:
            yield from full.put("more")
        except critsec.ShutDown:
            outcomes["putter"] = "shut down"

    def closer() -> Gen:
        yield  # both others are waiting now (round-robin ran them first)
        empty.shutdown()
        full.shutdown()

    rt.run(getter, putter, closer)
    assert outcomes == {"getter": "shut down", "putter": "shut down"}
    assert full.get_nowait() == "kept"


# -- deadlocks ----------------------------------------------------------------


def test_deadlock_names_each_task_and_what_it_waits_for() -> None:
    rt = coroutines()
    first, second = rt.lock(), rt.lock()
    closed: list[str] = []

    def take(name: str, a: Any, b: Any) -> Gen:
        try:
            with (yield from a):
                yield
                with (yield from b):
                    pass  # pragma: no cover - never reached
        finally:
            closed.append(name)

    with pytest.raises(critsec.DeadlockError) as caught:
        rt.run(
            critsec.task(take, "left", first, second).named("left"),
            critsec.task(take, "right", second, first).named("right"),
        )
    message = str(caught.value)
    assert "task 'left' waits for lock released" in message
    assert "task 'right' waits for lock released" in message
    # The generators were closed: their `with` blocks released the locks.
    assert sorted(closed) == ["left", "right"]
    assert not first.locked() and not second.locked()


def test_consumer_without_producer_is_a_deadlock() -> None:
    rt = coroutines()
    q = rt.queue()

    def consumer() -> Gen:
        return (yield from q.get())

    def finisher() -> Gen:
        yield
        return "done"

    with pytest.raises(critsec.DeadlockError, match=r"consumer' waits for queue not empty"):
        rt.run(consumer, finisher)

    # The closed consumer's wait was withdrawn: it must not absorb the
    # wake-up meant for the next run's consumer.
    def producer() -> Gen:
        yield
        q.put_nowait(1)

    assert rt.run(consumer, producer) == [1, None]


# -- order ----------------------------------------------------------------------


def traced(log: list[str], name: str, steps: int) -> Gen:
    for _ in range(steps):
        log.append(name)
        yield


def interleaving(**options: Any) -> list[str]:
    rt = coroutines(**options)
    log: list[str] = []
    rt.run(*(critsec.task(traced, log, name, 6).named(name) for name in "abc"))
    return log


def test_round_robin_takes_turns_in_the_order_given() -> None:
    assert interleaving() == list("abc") * 6


def test_random_order_is_reproducible_by_seed() -> None:
    assert interleaving(order="random", seed=7) == interleaving(order="random", seed=7)
    # The same runtime reseeds for every run.
    rt = coroutines(order="random", seed=11)
    runs = []
    for _ in range(2):
        log: list[str] = []
        rt.run(*(critsec.task(traced, log, name, 6).named(name) for name in "abc"))
        runs.append(log)
    assert runs[0] == runs[1]
    # Some seed (of the first few) gives another interleaving than round-robin.
    round_robin = interleaving()
    assert any(interleaving(order="random", seed=seed) != round_robin for seed in range(5))


def test_bad_order_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="round-robin, random"):
        critsec.runtime("coroutines", order="fifo")
    with pytest.raises(TypeError):
        critsec.runtime("coroutines", order=1)
    with pytest.raises(TypeError):
        critsec.runtime("coroutines", order="random", seed=[1])


# -- running tasks ------------------------------------------------------------


def test_plain_function_is_refused_before_anything_runs() -> None:
    ran: list[str] = []

    def plain(counter: Any) -> None:
        ran.append("plain")

    def fine() -> Gen:
        ran.append("fine")
        yield

    rt = coroutines()
    with pytest.raises(
        TypeError, match=r"task '\S*plain' is not a generator function.*add a `yield`"
    ):
        rt.run(fine, critsec.task(plain, rt.counter()))
    assert ran == []


def test_async_function_is_refused_with_a_pointer_to_asyncio() -> None:
    async def work() -> None: ...

    with pytest.raises(TypeError, match=r"task '\S*work' is an async function.*'asyncio'"):
        coroutines().run(work)


def test_callables_returning_generators_are_accepted() -> None:
    def gen(value: int) -> Gen:
        yield
        return value

    class Maker:
        def __call__(self) -> Gen:
            return gen(3)

    def decorated(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    rt = coroutines()
    results = rt.run(
        critsec.task(gen, 1),
        functools.partial(gen, 2),
        Maker(),
        lambda: gen(4),
        critsec.task(decorated(gen), 5),
    )
    assert results == [1, 2, 3, 4, 5]
    with pytest.raises(TypeError, match=r"task '\S*<lambda>' returned int"):
        rt.run(lambda: 42)


def test_yielding_a_value_is_refused_naming_the_task() -> None:
    rt = coroutines()
    lock = rt.lock()
    closed = []

    def other() -> Gen:
        try:
            while True:
                yield
        finally:
            closed.append("other")

    def yields_value() -> Gen:
        yield 42

    def forgets_yield_from() -> Gen:
        yield lock.acquire()

    with pytest.raises(TypeError, match=r"task '\S*yields_value' yielded 42 at .*test_coroutines"):
        rt.run(other, yields_value)
    assert closed == ["other"]
    with pytest.raises(TypeError, match="did you mean `yield from`"):
        rt.run(forgets_yield_from)
    assert not lock.locked()


def test_task_error_closes_the_others_and_releases_their_locks() -> None:
    rt = coroutines()
    lock = rt.lock()
    closed = []

    def holder() -> Gen:
        try:
            with (yield from lock):
                while True:
                    yield
        finally:
            closed.append(lock.locked())

    def failing() -> Gen:
        yield
        raise KeyError("boom")

    with pytest.raises(critsec.TaskError) as caught:
        rt.run(holder, failing)
    assert caught.value.task.endswith("failing")
    assert isinstance(caught.value.__cause__, KeyError)
    assert closed == [False]  # closed, and its `with` had released the lock


def test_failing_cleanup_is_noted_on_the_error() -> None:
    rt = coroutines()

    def messy() -> Gen:
        try:
            while True:
                yield
        finally:
            raise OSError("cleanup failed")

    def failing() -> Gen:
        yield
        raise ValueError("boom")

    with pytest.raises(critsec.TaskError) as caught:
        rt.run(messy, failing)
    assert caught.value.task.endswith("failing")
    assert any("messy' raised OSError('cleanup failed')" in note for note in caught.value.__notes__)


def test_timeout_names_the_unfinished_tasks() -> None:
    rt = coroutines()
    closed = []

    def spinner() -> Gen:
        try:
            while True:
                yield
        finally:
            closed.append("spinner")

    def quick() -> Gen:
        return 1  # done at its first step, before the clock can matter
        yield

    with pytest.raises(TimeoutError, match="spinner") as caught:
        rt.run(quick, spinner, timeout=0.05)
    assert "quick" not in str(caught.value)
    assert closed == ["spinner"]


def test_primitives_outlive_a_run() -> None:
    rt = coroutines()
    lock, q = rt.lock(), rt.queue(1)

    def pair() -> list[Any]:
        def producer() -> Gen:
            for i in range(3):
                with (yield from lock):
                    yield  # the consumer waits for the lock here
                yield from q.put(i)  # and here the producer waits for room

        def consumer() -> Gen:
            got = []
            for _ in range(3):
                with (yield from lock):
                    yield
                got.append((yield from q.get()))
            return got

        return rt.run(producer, consumer)

    assert pair() == [None, [0, 1, 2]]
    assert pair() == [None, [0, 1, 2]]


def test_repr_shows_the_options() -> None:
    assert repr(coroutines(order="random", seed=5)) == (
        "critsec.runtime('coroutines', order='random', seed=5)"
    )
