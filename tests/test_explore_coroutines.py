"""The explorer on cooperative tasks: generator functions switching at
``yield`` and ``async def`` functions on a controlled event loop.

Litmus programs that must fail (lost updates, lock-order deadlocks, a task
that raises), their fixes that must pass *exhaustively* under ``dfs``, and
outcome-set tests that prove the rare branches are reached (a timeout that
fires and one that does not). Determinism: the same seed gives the same
trace, and a replay token gives the same failure and trace. Nothing sleeps
for real: asyncio runs in virtual time, and a test that slept would hit the
suite's timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

import critsec
from critsec import Empty
from critsec.explorer import ExplorationLimit, Result, explore, replay
from critsec.runtimes._asyncio import AsyncioLock, AsyncioQueue
from critsec.runtimes._coroutines import CoroutineLock, CoroutineQueue

Gen = Generator[Any, None, None]


class State:
    """Shared state for one schedule. Its repr has no memory address, so a
    failure's trace (which shows the state) reads the same on every run."""

    def __init__(self, **primitives: Any) -> None:
        self.value = 0
        self.log: list[Any] = []
        self.__dict__.update(primitives)

    def __repr__(self) -> str:
        return f"State(value={self.value}, log={self.log})"

    if TYPE_CHECKING:  # the primitives given to __init__

        def __getattr__(self, name: str) -> Any: ...


def expect_failure(result: Result, kind: str) -> None:
    assert result.failed, f"no failure found in {result.schedules} schedules"
    assert result.kind == kind, result
    assert result.schedule is not None


def expect_proof(result: Result) -> None:
    assert not result.failed, result
    assert result.exhausted, f"dfs stopped after {result.schedules} schedules without a proof"


def outcomes(
    setup: Callable[[], State], tasks: list[Callable[[State], Any]], **options: Any
) -> set[tuple[Any, ...]]:
    """Every final ``log`` that dfs reaches (the exploration must pass)."""
    seen: set[tuple[Any, ...]] = set()

    def record(state: State) -> bool:
        seen.add(tuple(state.log))
        return True

    expect_proof(explore(setup, tasks, record, strategy="dfs", **options))
    return seen


# -- generators ------------------------------------------------------------------


def gen_increment(state: State) -> Gen:
    value = state.value
    yield  # a switch between the read and the write
    state.value = value + 1


def gen_locked_increment(state: State) -> Gen:
    with (yield from state.lock):
        value = state.value
        yield
        state.value = value + 1


def two_increments(state: State) -> bool:
    return state.value == 2


def with_lock() -> State:
    return State(lock=CoroutineLock())


@pytest.mark.parametrize("strategy", ["pct", "random", "dfs"])
def test_generator_lost_update_is_found(strategy: str) -> None:
    result = explore(
        State, [gen_increment, gen_increment], two_increments, strategy=strategy, seed=1
    )
    expect_failure(result, "invariant")
    assert "value=1" in result.message
    # Both reads happen before either write: the trace shows the values and
    # marks the conflict, after Lincheck.
    assert result.trace.count("State.value ➜ 0") == 2
    assert result.trace.count("State.value = 1") == 2
    assert "lost update on State.value" in result.trace
    assert "gen_increment#1" in result.trace and "gen_increment#2" in result.trace


counter = 0  # the lesson's global, shared by the generator tasks below


def reset_counter() -> State:
    global counter
    counter = 0
    return State()


def gen_global_increment(state: State) -> Gen:
    global counter
    value = counter
    yield
    counter = value + 1


def gen_counter_increment(state: State) -> Gen:
    value = state.counter.value  # critsec's counter: `value` is a property
    yield
    state.counter.value = value + 1


def test_generator_trace_shows_global_and_property_values() -> None:
    found = explore(
        reset_counter, [gen_global_increment] * 2, lambda state: counter == 2, strategy="dfs"
    )
    expect_failure(found, "invariant")
    assert found.trace.count("counter ➜ 0") == 2
    assert "lost update on global counter" in found.trace
    # Each access is shown at the line that made it (a write is recorded once
    # done, when the task may already be on its next line).
    sources = {(e.kind, e.source) for e in found.events if e.kind in ("read", "write")}
    assert sources == {("read", "value = counter"), ("write", "counter = value + 1")}

    rt = critsec.runtime("coroutines")
    found = explore(
        lambda: State(counter=rt.counter(0)),
        [gen_counter_increment] * 2,
        lambda state: state.counter.value == 2,
        strategy="dfs",
    )
    expect_failure(found, "invariant")
    # The counter is named after the place it was read from.
    assert found.trace.count("State.counter.value ➜ 0") == 2
    assert "lost update on State.counter.value" in found.trace


def test_generator_lock_repairs_the_lost_update_exhaustively() -> None:
    result = explore(
        with_lock,
        [gen_locked_increment, gen_locked_increment, gen_locked_increment],
        lambda state: state.value == 3,
        strategy="dfs",
    )
    expect_proof(result)
    assert result.schedules > 1


def gen_lock_a_then_b(state: State) -> Gen:
    with (yield from state.a):
        yield
        with (yield from state.b):
            pass


def gen_lock_b_then_a(state: State) -> Gen:
    with (yield from state.b):
        yield
        with (yield from state.a):
            pass


def test_generator_lock_order_deadlock_is_found_with_names() -> None:
    result = explore(
        lambda: State(a=CoroutineLock(), b=CoroutineLock()),
        [gen_lock_a_then_b, gen_lock_b_then_a],
        lambda state: True,
        strategy="dfs",
    )
    expect_failure(result, "deadlock")
    # Who waits for what, and where: the line that waits for the second lock.
    assert "'gen_lock_a_then_b' waits for lock released on State.b" in result.trace
    assert "'gen_lock_b_then_a' waits for lock released on State.a" in result.trace
    assert f"{__file__}:" in result.trace
    assert "with (yield from state.b):" in result.trace


def gen_holder(state: State) -> Gen:
    with (yield from state.lock):
        yield


def gen_impatient(state: State) -> Gen:
    got = yield from state.lock.acquire(timeout=5)
    state.log.append(got)
    if got:
        state.lock.release()


def test_generator_timeout_is_a_choice_of_the_scheduler() -> None:
    # The lock is free or released in some schedules and the timeout fires in
    # others: dfs must reach both outcomes, without really waiting.
    assert outcomes(with_lock, [gen_holder, gen_impatient]) == {(True,), (False,)}


def gen_get_with_timeout(state: State) -> Gen:
    try:
        item = yield from state.queue.get(timeout=1)
    except Empty:
        item = "empty"
    state.log.append(item)


def gen_put_later(state: State) -> Gen:
    yield
    yield from state.queue.put("item")


def test_generator_queue_get_times_out_or_gets_the_item() -> None:
    seen = outcomes(lambda: State(queue=CoroutineQueue(1)), [gen_get_with_timeout, gen_put_later])
    assert seen == {("item",), ("empty",)}


def gen_producer(state: State) -> Gen:
    for item in range(3):
        yield from state.queue.put(item)


def gen_consumer(state: State) -> Gen:
    for _ in range(3):
        state.log.append((yield from state.queue.get()))


def test_generator_bounded_queue_keeps_order_in_every_schedule() -> None:
    seen = outcomes(lambda: State(queue=CoroutineQueue(1)), [gen_producer, gen_consumer])
    assert seen == {(0, 1, 2)}


def gen_fails_after_yield(state: State) -> Gen:
    yield
    raise ValueError("broken invariant inside the task")


def test_generator_exception_is_reported_with_its_traceback() -> None:
    result = explore(State, [gen_increment, gen_fails_after_yield], lambda state: True, seed=3)
    expect_failure(result, "exception")
    assert "gen_fails_after_yield" in result.message
    assert "ValueError: broken invariant inside the task" in result.trace
    assert "Traceback (most recent call last)" in result.trace


def gen_yields_a_generator(state: State) -> Gen:
    yield state.lock.acquire()  # forgot `from`


def test_generator_yielding_something_else_is_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match="did you mean `yield from`"):
        explore(with_lock, [gen_yields_a_generator], lambda state: True)


def gen_spin(state: State) -> Gen:
    while not state.log:  # waits for a flag nobody sets, by spinning
        yield


def test_a_generator_spin_no_one_ends_is_a_livelock_at_its_yield() -> None:
    result = explore(State, [gen_spin], lambda state: True)
    expect_failure(result, "livelock")
    assert result.message.startswith("livelock: no task makes progress: 'gen_spin' spins at ")
    assert any(
        line.startswith("task 'gen_spin' spins at") and line.endswith(": yield")
        for line in result.trace.splitlines()
    )


def test_a_spinning_generator_lets_the_one_it_waits_for_run() -> None:
    def reader(state: State) -> Gen:
        while not state.log:
            yield
        state.value = len(state.log)

    def writer(state: State) -> Gen:
        yield
        state.log.append("ready")

    for strategy in ("pct", "random"):
        result = explore(State, [reader, writer], lambda s: s.value == 1, strategy=strategy)
        assert not result.failed, result
    expect_proof(explore(State, [reader, writer], lambda s: s.value == 1, strategy="dfs"))


# -- asyncio ---------------------------------------------------------------------


async def async_increment(state: State) -> None:
    value = state.value
    await asyncio.sleep(0)  # a switch between the read and the write
    state.value = value + 1


async def async_locked_increment(state: State) -> None:
    async with state.lock:
        value = state.value
        await asyncio.sleep(0)
        state.value = value + 1


@pytest.mark.parametrize("strategy", ["pct", "random", "dfs"])
def test_asyncio_lost_update_is_found(strategy: str) -> None:
    result = explore(
        State, [async_increment, async_increment], two_increments, strategy=strategy, seed=1
    )
    expect_failure(result, "invariant")
    assert result.trace.count("State.value ➜ 0") == 2
    assert result.trace.count("State.value = 1") == 2
    assert "lost update on State.value" in result.trace
    assert "await asyncio.sleep(0)" in result.trace


@pytest.mark.parametrize("make_lock", [asyncio.Lock, AsyncioLock], ids=["asyncio", "critsec"])
def test_asyncio_lock_repairs_the_lost_update_exhaustively(make_lock: Callable[[], Any]) -> None:
    result = explore(
        lambda: State(lock=make_lock()),
        [async_locked_increment] * 3,
        lambda state: state.value == 3,
        strategy="dfs",
    )
    expect_proof(result)
    assert result.schedules > 1


async def async_lock_a_then_b(state: State) -> None:
    async with state.a:
        await asyncio.sleep(0)
        async with state.b:
            pass


async def async_lock_b_then_a(state: State) -> None:
    async with state.b:
        await asyncio.sleep(0)
        async with state.a:
            pass


@pytest.mark.parametrize("make_lock", [asyncio.Lock, AsyncioLock], ids=["asyncio", "critsec"])
def test_asyncio_lock_order_deadlock_is_found_with_names(make_lock: Callable[[], Any]) -> None:
    result = explore(
        lambda: State(a=make_lock(), b=make_lock()),
        [async_lock_a_then_b, async_lock_b_then_a],
        lambda state: True,
        strategy="dfs",
    )
    expect_failure(result, "deadlock")
    assert "'async_lock_a_then_b' waits for" in result.trace
    assert "'async_lock_b_then_a' waits for" in result.trace
    assert "on State.b" in result.trace and "on State.a" in result.trace
    assert "async with state.b:" in result.trace and "async with state.a:" in result.trace
    assert f"{__file__}:" in result.trace


async def sleep_an_hour(state: State) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(3600)
    state.log.append(loop.time() - start)


async def time_out_after_a_day(state: State) -> None:
    try:
        async with asyncio.timeout(86400):
            await asyncio.Event().wait()  # never set
    except TimeoutError:
        state.log.append("timed out")


def test_asyncio_sleeps_and_timeouts_run_in_virtual_time() -> None:
    # An hour and a day pass on the loop's clock; a real sleep would run into
    # the suite's 60 s timeout instead. When nothing else is ready the timers
    # fire in time order, so the hour ends first, exactly; the day's timer
    # may also expire while the sleeper's last step runs (a step may take any
    # time), which that step then measures: never less than an hour.
    seen = outcomes(State, [sleep_an_hour, time_out_after_a_day])
    assert (3600.0, "timed out") in seen
    for log in seen:
        slept = next(x for x in log if x != "timed out")
        assert sorted(log, key=str) == sorted([slept, "timed out"], key=str)
        assert slept >= 3600.0


async def set_soon(state: State) -> None:
    state.log.append("set")
    state.event.set()


async def wait_a_second(state: State) -> None:
    try:
        await asyncio.wait_for(state.event.wait(), timeout=1)
        state.log.append("woke")
    except TimeoutError:
        state.log.append("timed out")


def test_a_timeout_races_the_steps_that_are_ready() -> None:
    # The setter is ready all along, so with timers fired only when nothing
    # else can run the waiter always woke; but the setter's step may take
    # more than the second the waiter has left, and then it times out.
    seen = outcomes(lambda: State(event=asyncio.Event()), [wait_a_second, set_soon])
    assert {("set", "woke"), ("timed out", "set")} <= seen
    # On 3.11 wait_for runs the wait as a task of its own, whose first step
    # may also be slower than the second left, after the event was set.
    assert seen <= {("set", "woke"), ("timed out", "set"), ("set", "timed out")}
    result = explore(
        lambda: State(event=asyncio.Event()),
        [wait_a_second, set_soon],
        lambda state: "timed out" not in state.log,
        strategy="dfs",
    )
    assert result.failed and result.kind == "invariant"
    assert "times out at 1 s waiting for" in result.trace
    assert result.schedule is not None
    again = replay(
        lambda: State(event=asyncio.Event()),
        [wait_a_second, set_soon],
        lambda state: "timed out" not in state.log,
        result.schedule,
    )
    assert again.trace == result.trace


def test_timers_fire_in_time_order_when_nothing_is_ready() -> None:
    # The task sets two timers and waits: nothing is ready while they are
    # pending, so only the earliest can expire first.
    async def two_timers(state: State) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(2, state.log.append, 2.0)
        loop.call_later(1, state.log.append, 1.0)
        await asyncio.sleep(3)

    assert outcomes(State, [two_timers]) == {(1.0, 2.0)}


async def event_setter(state: State) -> None:
    state.log.append("set")
    state.event.set()


async def event_waiter(state: State) -> None:
    await state.event.wait()
    state.log.append("woke")


async def condition_consumer(state: State) -> None:
    async with state.condition:
        await state.condition.wait_for(lambda: state.value)
        state.log.append(state.value)


async def condition_producer(state: State) -> None:
    async with state.condition:
        state.value = 7
        state.condition.notify()


async def bounded(state: State) -> None:
    async with state.semaphore:
        state.value += 1
        state.log.append(state.value)  # how many are inside now
        await asyncio.sleep(0)
        state.value -= 1


async def async_producer(state: State) -> None:
    for item in range(3):
        await state.queue.put(item)


async def async_consumer(state: State) -> None:
    for _ in range(3):
        state.log.append(await state.queue.get())


@pytest.mark.parametrize(
    ("setup", "tasks", "expected"),
    [
        (lambda: State(event=asyncio.Event()), [event_waiter, event_setter], {("set", "woke")}),
        (
            lambda: State(condition=asyncio.Condition()),
            [condition_consumer, condition_producer],
            {(7,)},
        ),
        (
            lambda: State(queue=asyncio.Queue(1)),
            [async_producer, async_consumer],
            {(0, 1, 2)},
        ),
        (
            lambda: State(queue=AsyncioQueue(1)),
            [async_producer, async_consumer],
            {(0, 1, 2)},
        ),
    ],
    ids=["Event", "Condition", "Queue", "critsec-queue"],
)
def test_asyncio_primitives_block_under_control(
    setup: Callable[[], State], tasks: list[Callable[[State], Any]], expected: set[Any]
) -> None:
    assert outcomes(setup, tasks) == expected


def test_asyncio_semaphore_admits_at_most_its_value() -> None:
    seen = outcomes(lambda: State(semaphore=asyncio.Semaphore(2)), [bounded] * 3)
    # Never three inside at once; and the schedule where two are inside is reached.
    assert all(max(log) <= 2 for log in seen)
    assert any(max(log) == 2 for log in seen)


async def spawns_two_increments(state: State) -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(async_increment(state))
        group.create_task(async_increment(state))


def test_asyncio_tasks_made_by_user_code_are_interleaved_too() -> None:
    result = explore(State, [spawns_two_increments], two_increments, strategy="dfs")
    expect_failure(result, "invariant")
    # Shown in the creator's column, under names that do not depend on the run.
    assert "[async_increment-1]" in result.trace and "[async_increment-2]" in result.trace


async def fails_soon() -> None:
    await asyncio.sleep(0)
    raise KeyError("from a task made by user code")


async def handles_its_child_failure(state: State) -> None:
    child = asyncio.create_task(fails_soon())
    try:
        await child
    except KeyError:
        state.log.append("handled")


async def forgets_its_child(state: State) -> None:
    asyncio.create_task(fails_soon())  # noqa: RUF006 (forgotten: the point of the test)
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def child_in_task_group(state: State) -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(fails_soon())


def test_asyncio_failure_of_a_made_task_counts_only_if_nobody_handles_it() -> None:
    assert outcomes(State, [handles_its_child_failure]) == {("handled",)}
    forgotten = explore(State, [forgets_its_child], lambda state: True, strategy="dfs")
    expect_failure(forgotten, "exception")
    assert "'fails_soon-1' raised KeyError" in forgotten.message
    assert "no task awaited it" in forgotten.message
    grouped = explore(State, [child_in_task_group], lambda state: True, strategy="dfs")
    expect_failure(grouped, "exception")
    assert "KeyError: 'from a task made by user code'" in grouped.trace


async def async_fails_after_await(state: State) -> None:
    await asyncio.sleep(0)
    raise ValueError("broken invariant inside the task")


def test_asyncio_exception_is_reported_with_its_traceback() -> None:
    result = explore(State, [async_increment, async_fails_after_await], lambda s: True, seed=3)
    expect_failure(result, "exception")
    assert "async_fails_after_await" in result.message
    assert "ValueError: broken invariant inside the task" in result.trace
    assert "Traceback (most recent call last)" in result.trace


async def waits_forever_on_queue(state: State) -> None:
    await state.queue.get()


def test_asyncio_deadlock_names_what_a_critsec_primitive_waits_for() -> None:
    result = explore(lambda: State(queue=AsyncioQueue()), [waits_forever_on_queue], lambda s: True)
    expect_failure(result, "deadlock")
    assert "'waits_forever_on_queue' waits for queue not empty on State.queue" in result.trace


async def async_spin(state: State) -> None:
    while not state.log:
        await asyncio.sleep(0)


def test_an_asyncio_spin_no_one_ends_is_a_livelock_at_its_await() -> None:
    result = explore(State, [async_spin], lambda state: True)
    expect_failure(result, "livelock")
    assert result.message.startswith("livelock: no task makes progress: 'async_spin' spins at ")
    assert any(
        line.startswith("task 'async_spin' spins at") and line.endswith(": await asyncio.sleep(0)")
        for line in result.trace.splitlines()
    )


def test_a_spinning_asyncio_task_lets_the_one_it_waits_for_run() -> None:
    async def reader(state: State) -> None:
        while not state.log:
            await asyncio.sleep(0)
        state.value = len(state.log)

    async def writer(state: State) -> None:
        await asyncio.sleep(0)
        state.log.append("ready")

    for strategy in ("pct", "random"):
        result = explore(State, [reader, writer], lambda s: s.value == 1, strategy=strategy)
        assert not result.failed, result
    expect_proof(explore(State, [reader, writer], lambda s: s.value == 1, strategy="dfs"))


def test_a_spin_still_ends_in_the_step_limit_when_that_comes_first() -> None:
    with pytest.raises(ExplorationLimit, match="spinning on a flag that does not change"):
        explore(State, [async_spin], lambda state: True, max_steps=200)


def test_asyncio_explore_refuses_to_run_inside_a_running_loop() -> None:
    async def main() -> None:
        explore(State, [async_increment], lambda state: True)

    with pytest.raises(RuntimeError, match="inside a running one"):
        asyncio.run(main())


def gen_reads_once(state: State) -> Gen:
    state.log.append(state.value)
    yield


async def async_reads_once(state: State) -> None:
    state.log.append(state.value)
    await asyncio.sleep(0)


@pytest.mark.parametrize("task", [gen_reads_once, async_reads_once])
def test_first_schedule_is_traced_in_full(task: Callable[[State], Any]) -> None:
    # The very first run of a task's code shows its reads too (on 3.12+ the
    # tracer must be set on the frame before asking for opcode events).
    result = explore(State, [task], lambda state: False, max_schedules=1)
    expect_failure(result, "invariant")
    assert "State.value ➜ 0" in result.trace


# -- determinism, both kinds ---------------------------------------------------------

LOST_UPDATES: dict[str, list[Callable[[State], Any]]] = {
    "generators": [gen_increment, gen_increment, gen_increment],
    "asyncio": [async_increment, async_increment, async_increment],
}


@pytest.mark.parametrize("kind", list(LOST_UPDATES))
@pytest.mark.parametrize("strategy", ["pct", "random"])
def test_same_seed_same_schedules_same_trace(kind: str, strategy: str) -> None:
    def run() -> Result:
        return explore(
            State, LOST_UPDATES[kind], lambda s: s.value == 3, strategy=strategy, seed=12345
        )

    first, second = run(), run()
    expect_failure(first, "invariant")
    assert (second.schedules, second.schedule, second.trace) == (
        first.schedules,
        first.schedule,
        first.trace,
    )


@pytest.mark.parametrize("kind", list(LOST_UPDATES))
def test_replay_reproduces_the_failure_and_its_trace(kind: str) -> None:
    tasks = LOST_UPDATES[kind]
    found = explore(State, tasks, lambda s: s.value == 3, seed=7)
    expect_failure(found, "invariant")
    assert found.schedule is not None
    for _ in range(2):
        again = replay(State, tasks, lambda s: s.value == 3, found.schedule)
        assert (again.failed, again.kind, again.message) == (True, found.kind, found.message)
        assert again.trace == found.trace


def test_replay_reproduces_a_deadlock_and_its_report() -> None:
    tasks = [async_lock_a_then_b, async_lock_b_then_a]

    def setup() -> State:
        return State(a=asyncio.Lock(), b=asyncio.Lock())

    found = explore(setup, tasks, lambda s: True, seed=5)
    expect_failure(found, "deadlock")
    assert found.schedule is not None
    assert replay(setup, tasks, lambda s: True, found.schedule).trace == found.trace


# -- one virtual clock: the tasks' time.monotonic and time.sleep ---------------------


def gen_times_out(state: State) -> Gen:
    start = time.monotonic()
    try:
        yield from state.queue.get(timeout=5)
    except Empty:
        state.log.append(("timed out after", time.monotonic() - start))


def gen_sleeps(state: State) -> Gen:
    start = time.monotonic()
    time.sleep(0.5)  # holds up every task, as in a real run; takes no real time
    state.log.append(("slept", time.monotonic() - start))
    yield


def test_generator_tasks_read_and_sleep_on_the_schedules_clock() -> None:
    real = time.monotonic
    began = real()
    seen = outcomes(
        lambda: State(queue=critsec.runtime("coroutines").queue(1)), [gen_times_out, gen_sleeps]
    )
    # The same exact floats on every schedule: virtual time, not the machine's.
    assert seen == {
        (("timed out after", 5.0), ("slept", 0.5)),
        (("slept", 0.5), ("timed out after", 5.0)),
    }
    assert real() - began < 5  # nothing really slept
    assert time.monotonic is real  # restored


async def async_reads_the_clock(state: State) -> None:
    loop = asyncio.get_running_loop()
    state.log.append(("start", time.monotonic(), loop.time()))
    time.sleep(2)  # blocks the loop: its clock moves
    await asyncio.sleep(1)
    state.log.append(("end", time.monotonic(), loop.time()))


def test_asyncio_tasks_time_monotonic_is_the_loops_clock() -> None:
    assert outcomes(State, [async_reads_the_clock]) == {(("start", 0.0, 0.0), ("end", 3.0, 3.0))}


def test_setup_and_the_invariant_read_the_schedules_clock_too() -> None:
    read: list[float] = []

    def setup() -> State:
        read.append(time.monotonic())
        return State(queue=critsec.runtime("coroutines").queue(1))

    def invariant(state: State) -> bool:
        read.append(time.monotonic())
        return True

    expect_proof(explore(setup, [gen_times_out], invariant, strategy="dfs"))
    assert read == [0.0, 5.0]


def test_explore_inside_a_task_is_refused() -> None:
    def nested(state: State) -> Gen:
        explore(State, [gen_increment], lambda s: True, max_schedules=1)
        yield

    result = explore(State, [nested], lambda s: True, max_schedules=1)
    assert result.failed and "already running" in result.message


async def poll_until_ready(state: State) -> None:
    while not state.value:
        await asyncio.sleep(0.01)  # a timed wait: its timer may end it at any choice
    state.log.append("ready")


async def make_ready(state: State) -> None:
    await asyncio.sleep(0)
    state.value = 1


@pytest.mark.parametrize("strategy", ["pct", "random", "pos", "dfs"])
def test_a_task_polling_with_sleep_does_not_starve_the_one_it_waits_for(strategy: str) -> None:
    # Its own timer could end each sleep at once, so a poller on top would
    # run round after round; a round that changed nothing is a spin, and
    # the others run first (fair scheduling), as for `await asyncio.sleep(0)`.
    result = explore(
        State,
        [poll_until_ready, make_ready],
        lambda state: state.log == ["ready"],
        strategy=strategy,
        max_schedules=200,
        seed=1,
    )
    assert not result.failed, result.message
    if strategy == "dfs":
        assert result.exhausted


def test_polling_for_what_no_task_will_do_is_a_livelock() -> None:
    result = explore(State, [poll_until_ready], lambda state: True, max_schedules=5, seed=1)
    assert result.kind == "livelock"
    assert "'poll_until_ready' spins at" in result.message
