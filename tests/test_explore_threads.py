"""The threads driver on litmus programs: known-buggy ones must fail (with
the right kind, a replayable token and a trace), correct ones must pass,
exhaustively within a bound under dfs. Every program is tiny so that the
whole file runs in seconds; no test sleeps or measures time.
"""

from __future__ import annotations

import _thread
import collections
import dataclasses
import functools
import io
import logging
import os
import queue
import random
import threading
import time
from typing import Any

import pytest

import critsec
from critsec.explorer import Event, ExplorationLimit, ScheduleStalled, explore, replay
from critsec.explorer._scheduler import DFSStrategy, Scheduler
from critsec.explorer._threads import BACKENDS, ThreadDriver
from critsec.explorer._trace import Recorder
from critsec.explorer._usercode import default_user_code, generated
from critsec.lab import _demo

STRATEGIES = ["random", "pct", "dfs"]


class State:
    """A bag of shared attributes for one schedule."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Any:
    """Every schedule's threads must be gone when explore returns."""
    before = threading.active_count()
    yield
    assert threading.active_count() == before
    # The patches were undone.
    assert threading._allocate_lock is _thread.allocate_lock
    assert threading.Lock in (_thread.allocate_lock, _thread.LockType)
    assert time.monotonic.__module__ == "time"


# -- the lesson: a global counter, += and -= without a lock --------------------------

counter = 0


def reset_counter() -> None:
    global counter
    counter = 0


def increment(_: object) -> None:
    global counter
    counter += 1


def decrement(_: object) -> None:
    global counter
    counter -= 1


def counter_is_zero(_: object) -> bool:
    return counter == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lost_update_on_a_global_is_found_and_replays(strategy: str) -> None:
    result = explore(
        reset_counter, [increment, decrement], counter_is_zero, strategy=strategy, seed=1
    )
    assert result.failed and result.kind == "invariant"
    assert result.schedule is not None
    again = replay(reset_counter, [increment, decrement], counter_is_zero, result.schedule)
    assert again.failed and again.kind == "invariant"
    assert again.events == result.events
    # The trace shows the conflicting reads and writes of the global, with values.
    reads = [e for e in result.events if e.kind == "read" and e.location == "global counter"]
    writes = [e for e in result.events if e.kind == "write" and e.location == "global counter"]
    assert {e.task for e in reads} == {0, 1} and [e.value for e in reads] == ["0", "0"]
    assert {w.value for w in writes} == {"1", "-1"}
    assert all(e.where.startswith("test_explore_threads.py:") for e in reads + writes)
    assert {e.source for e in writes} == {"counter += 1", "counter -= 1"}


def test_each_write_is_shown_on_its_own_line_with_its_value() -> None:
    def two_lines(s: State) -> None:
        s.n = 1
        s.items[0] = "x"

    result = explore(lambda: State(n=0, items=[None]), [two_lines], lambda s: False, strategy="dfs")
    writes = [(e.location, e.value, e.source) for e in result.events if e.kind == "write"]
    assert writes == [("State.n", "1", "s.n = 1"), ("State.items[0]", "'x'", 's.items[0] = "x"')]


def test_same_seed_same_schedules_same_trace() -> None:
    runs = [
        explore(reset_counter, [increment, decrement], counter_is_zero, strategy="random", seed=7)
        for _ in range(2)
    ]
    assert runs[0].schedules == runs[1].schedules
    assert runs[0].schedule == runs[1].schedule
    assert runs[0].events == runs[1].events and runs[0].trace == runs[1].trace


# -- the same with a lock: a proof within the bound ------------------------------------


def locked_setup() -> State:
    return State(lock=threading.Lock(), n=0)


def locked_increment(s: State) -> None:
    with s.lock:
        s.n += 1


def test_a_locked_counter_passes_every_schedule_within_the_bound() -> None:
    result = explore(
        locked_setup,
        [locked_increment, locked_increment],
        lambda s: s.n == 2,
        strategy="dfs",
        preemption_bound=2,
    )
    assert not result.failed and result.exhausted
    assert result.schedules > 10  # real interleavings were tried, not one


def test_the_unlocked_attribute_counter_fails_and_names_the_attribute() -> None:
    def unlocked(s: State) -> None:
        s.n += 1

    result = explore(
        locked_setup, [unlocked, unlocked], lambda s: s.n == 2, strategy="dfs", preemption_bound=1
    )
    assert result.kind == "invariant"
    assert {e.location for e in result.events if e.kind in ("read", "write")} == {"State.n"}


# -- deadlocks --------------------------------------------------------------------------


def two_locks() -> State:
    return State(a=threading.Lock(), b=threading.Lock())


def a_then_b(s: State) -> None:
    with s.a, s.b:  # a, then b
        pass


def b_then_a(s: State) -> None:
    with s.b, s.a:  # b, then a
        pass


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lock_order_deadlock_names_both_tasks(strategy: str) -> None:
    result = explore(two_locks, [a_then_b, b_then_a], lambda s: True, strategy=strategy, seed=2)
    assert result.kind == "deadlock"
    assert "'a_then_b' waits for Lock #2 held by task 'b_then_a'" in result.message
    assert "'b_then_a' waits for Lock #1 held by task 'a_then_b'" in result.message
    assert "test_explore_threads.py:" in result.trace  # where each one waits
    again = replay(two_locks, [a_then_b, b_then_a], lambda s: True, result.schedule or "")
    assert again.kind == "deadlock" and again.events == result.events


def test_a_lock_taken_twice_is_a_deadlock_and_an_rlock_is_not() -> None:
    def twice(s: State) -> None:
        with s.lock, s.lock:
            pass

    result = explore(locked_setup, [twice], lambda s: True, max_schedules=3)
    assert result.kind == "deadlock"
    assert "held by task 'twice'" in result.message
    passed = explore(
        lambda: State(lock=threading.RLock()), [twice], lambda s: True, max_schedules=3
    )
    assert not passed.failed


# -- conditions, events, barriers, semaphores, queues -----------------------------------


def buffer_setup() -> State:
    return State(cond=threading.Condition(), items=[], taken=[])


def consumer_with_if(s: State) -> None:
    with s.cond:
        if not s.items:  # the bug: must be `while`
            s.cond.wait()
        s.taken.append(s.items.pop())


def consumer_with_while(s: State) -> None:
    with s.cond:
        while not s.items:
            s.cond.wait()
        s.taken.append(s.items.pop())


def producer(s: State) -> None:
    with s.cond:
        s.items.append(1)
        s.cond.notify_all()


def test_condition_waited_with_if_is_found() -> None:
    tasks = [consumer_with_if, consumer_with_if, producer, producer]
    result = explore(buffer_setup, tasks, lambda s: len(s.taken) == 2, strategy="pct", seed=3)
    assert result.kind == "exception"
    assert "IndexError" in result.message and "pop from empty list" in result.trace


def test_condition_waited_with_while_passes() -> None:
    tasks = [consumer_with_while, consumer_with_while, producer, producer]
    result = explore(
        buffer_setup,
        tasks,
        lambda s: sorted(s.taken) == [1, 1],
        strategy="pct",
        seed=3,
        max_schedules=200,
    )
    assert not result.failed, result


def test_a_consumer_without_producer_deadlocks_waiting_for_a_notify() -> None:
    result = explore(buffer_setup, [consumer_with_while], lambda s: True)
    assert result.kind == "deadlock"
    assert "Condition #1 to be notified" in result.message


def test_condition_wait_timeout_and_wait_for_are_scheduler_choices() -> None:
    outcomes: set[tuple[bool, bool]] = set()

    def waiter(s: State) -> None:
        with s.cond:
            got = s.cond.wait_for(lambda: s.ready, timeout=5)
            s.seen = (bool(got), s.ready)

    def setter(s: State) -> None:
        with s.cond:
            s.ready = True
            s.cond.notify()

    def record(s: State) -> bool:
        outcomes.add(s.seen)
        return True

    result = explore(
        lambda: State(cond=threading.Condition(), ready=False, seen=None),
        [waiter, setter],
        record,
        strategy="dfs",
        preemption_bound=2,
    )
    assert result.exhausted and not result.failed
    # Both a wake-up by notify and a timeout (before the setter ran) occur.
    assert outcomes == {(True, True), (False, False)}


def test_queue_with_get_timeout_does_not_stall() -> None:
    def produce(s: State) -> None:
        for i in range(2):
            s.q.put(i)

    def consume(s: State) -> None:
        while True:
            try:
                s.got.append(s.q.get(timeout=1.0))
            except queue.Empty:
                return

    result = explore(
        lambda: State(q=queue.Queue(), got=[]),
        [produce, consume],
        # The consumer may time out early (a legitimate schedule), never lose an item.
        lambda s: s.got + list(s.q.queue) == [0, 1],
        strategy="random",
        seed=4,
        max_schedules=100,
    )
    assert not result.failed, result
    assert result.schedules == 100


@pytest.mark.parametrize("kind", ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue"])
def test_every_queue_kind_hands_items_over(kind: str) -> None:
    def produce(s: State) -> None:
        s.q.put(1)
        s.q.put(2)

    def consume(s: State) -> None:
        s.got.append(s.q.get())
        s.got.append(s.q.get())

    result = explore(
        lambda: State(q=getattr(queue, kind)(), got=[]),
        [produce, consume],
        lambda s: sorted(s.got) == [1, 2],
        strategy="dfs",
        preemption_bound=2,
    )
    assert not result.failed and result.exhausted, result


def test_event_barrier_and_semaphore_programs_pass() -> None:
    def worker(s: State) -> None:
        with s.sem:
            s.inside += 1
            s.most = max(s.most, s.inside)
            s.inside -= 1
        s.barrier.wait()
        s.event.wait()

    def starter(s: State) -> None:
        s.barrier.wait()
        s.event.set()

    result = explore(
        lambda: State(
            sem=threading.BoundedSemaphore(1),
            barrier=threading.Barrier(3),
            event=threading.Event(),
            inside=0,
            most=0,
        ),
        [worker, worker, starter],
        lambda s: s.most == 1 and s.event.is_set(),
        strategy="pct",
        seed=5,
        max_schedules=100,
    )
    assert not result.failed, result


def test_a_semaphore_with_two_permits_lets_two_in() -> None:
    def worker(s: State) -> None:
        with s.sem:
            s.inside += 1
            s.most = max(s.most, s.inside)
            s.inside -= 1

    result = explore(
        lambda: State(sem=threading.Semaphore(2), inside=0, most=0),
        [worker, worker],
        lambda s: s.most < 2,
        strategy="dfs",
        preemption_bound=2,
    )
    assert result.kind == "invariant"


# -- critsec's own threads runtime --------------------------------------------------------


def test_runtime_counter_race_is_found_and_its_lock_fixes_it() -> None:
    rt = critsec.runtime("threads")

    def racy(s: State) -> None:
        s.counter.value += 1

    def safe(s: State) -> None:
        with s.lock:
            s.counter.value += 1

    def setup() -> State:
        return State(counter=rt.counter(), lock=rt.lock())

    def invariant(s: State) -> bool:
        return bool(s.counter.value == 2)

    result = explore(setup, [racy, racy], invariant, strategy="pct", seed=6)
    assert result.kind == "invariant"
    assert {e.location for e in result.events if e.kind == "read"} == {"State.counter.value"}
    assert {e.value for e in result.events if e.kind == "read"} == {"0"}  # both read 0
    proof = explore(setup, [safe, safe], invariant, strategy="dfs", preemption_bound=1)
    assert not proof.failed and proof.exhausted


def test_runtime_queue_is_controlled() -> None:
    rt = critsec.runtime("threads")

    def produce(s: State) -> None:
        s.q.put(1)

    def consume(s: State) -> None:
        s.got = s.q.get()

    result = explore(
        lambda: State(q=rt.queue(1), got=None),
        [consume, produce],
        lambda s: s.got == 1,
        strategy="dfs",
        preemption_bound=2,
    )
    assert not result.failed and result.exhausted, result


# -- failures of other kinds ---------------------------------------------------------------


def test_an_exception_in_a_task_is_reported_with_its_traceback() -> None:
    def boom(s: State) -> None:
        raise KeyError("missing")

    def fine(s: State) -> None:
        s.n += 1

    result = explore(locked_setup, [fine, boom], lambda s: True, strategy="random", seed=0)
    assert result.kind == "exception"
    assert result.message == "KeyError: 'missing'"
    assert 'raise KeyError("missing")' in result.trace  # the traceback
    # ... starting at the user's code, not at the driver that called it
    traceback_text = result.trace.split("Traceback (most recent call last):")[1]
    assert "critsec/explorer" not in traceback_text


# -- spin-waiting: fair scheduling and livelocks -------------------------------------


def peterson(me: int) -> Any:
    """Peterson's mutual exclusion for thread ``me`` of two: correct, and
    waiting by spinning (``wrong_order``: turn before flag, so both get in)."""

    def enter(s: State) -> None:
        other = 1 - me
        s.flag[me] = True
        s.turn = other
        while s.flag[other] and s.turn == other:
            pass
        s.inside += 1
        s.most = max(s.most, s.inside)
        s.inside -= 1
        s.flag[me] = False

    return enter


def peterson_state() -> State:
    return State(flag=[False, False], turn=0, inside=0, most=0)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_correct_spin_wait_passes_in_every_strategy(strategy: str) -> None:
    # Left to itself a spinner keeps the CPU: before fair scheduling every
    # pct and dfs schedule here ended in the step limit.
    result = explore(
        peterson_state,
        [peterson(0), peterson(1)],
        lambda s: s.most == 1,
        strategy=strategy,
        preemption_bound=2 if strategy == "dfs" else None,
        max_schedules=300 if strategy != "dfs" else 5_000,
        max_steps=2_000,
        seed=1,
    )
    assert not result.failed, result
    assert result.exhausted == (strategy == "dfs")


def test_a_huge_state_is_shown_shortened_in_the_failure() -> None:
    # A state of 100,000 items used to make a message of 689 KB on one line.
    result = explore(lambda: {"items": list(range(100_000))}, [lambda s: None], lambda s: False)
    assert result.message.startswith("the invariant does not hold: state is {'items': [0, 1, 2")
    assert result.message.endswith("... (688,901 characters in all)")
    assert len(result.message) < 600 and len(result.trace) < 1_000


def raise_huge(s: object) -> None:
    raise ValueError(list(range(100_000)))


@pytest.mark.parametrize("kind", ["thread", "generator", "async"])
def test_a_huge_exception_is_shown_shortened_in_the_failure(kind: str) -> None:
    # The exception's text, like a state, is cut: in the message and in
    # the traceback the result keeps (the trace), each line at 500 characters.
    async def raise_huge_async(s: object) -> None:
        raise_huge(s)

    def raise_huge_generator(s: object) -> Any:
        raise_huge(s)
        yield

    task = {"thread": raise_huge, "generator": raise_huge_generator, "async": raise_huge_async}
    result = explore(lambda: None, [task[kind]], lambda s: True)
    assert result.failed and result.kind == "exception"
    assert "ValueError: [0, 1, 2" in result.message
    assert "characters in all)" in result.message and len(result.message) < 700
    assert result.outcome is not None and "characters in all)" in result.outcome.detail
    assert max(map(len, result.outcome.detail.splitlines())) < 600
    assert len(result.trace) < 3_000


def test_a_spin_wait_that_no_one_ends_is_a_livelock_at_its_loop() -> None:
    def waits_for_b(s: State) -> None:
        while not s.b:
            pass
        s.a = True

    def waits_for_a(s: State) -> None:
        while not s.a:
            pass
        s.b = True

    tasks = [waits_for_b, waits_for_a]
    result = explore(lambda: State(a=False, b=False), tasks, lambda s: True, seed=3)
    assert result.kind == "livelock"
    assert result.message == (
        "livelock: no task makes progress: 'waits_for_b' spins at test_explore_threads.py:"
        f"{LINE_B}; 'waits_for_a' spins at test_explore_threads.py:{LINE_A}"
    )
    assert "task 'waits_for_b' spins at" in result.trace and "while not s.b:" in result.trace
    assert result.schedule is not None
    again = replay(lambda: State(a=False, b=False), tasks, lambda s: True, result.schedule)
    assert (again.kind, again.trace) == (result.kind, result.trace)


LINE_B = test_a_spin_wait_that_no_one_ends_is_a_livelock_at_its_loop.__code__.co_firstlineno + 2
LINE_A = LINE_B + 5


def test_a_loop_that_changes_something_every_round_ends_in_the_step_limit() -> None:
    def counts_forever(s: State) -> None:
        while True:
            s.n += 1

    with pytest.raises(ExplorationLimit, match="loops without end, changing something"):
        explore(lambda: State(n=0), [counts_forever], lambda s: True, max_steps=500)


def test_a_loop_of_local_instructions_hits_the_step_limit_too() -> None:
    def forever(s: State) -> None:
        while True:
            pass

    with pytest.raises(ExplorationLimit):
        explore(lambda: None, [forever], lambda s: True, strategy="dfs", max_steps=100)


def test_sleep_is_a_timed_wait_on_the_virtual_clock() -> None:
    def sleeper(s: State) -> None:
        start = time.monotonic()
        time.sleep(30)
        s.slept = time.monotonic() - start

    result = explore(lambda: State(slept=0.0), [sleeper], lambda s: s.slept == 30, strategy="dfs")
    assert not result.failed, result


def test_setup_blocking_forever_is_an_error_that_says_so() -> None:
    def setup() -> State:
        q: queue.Queue[int] = queue.Queue()
        q.get()
        return State()

    with pytest.raises(RuntimeError, match="would wait for it forever"):
        explore(setup, [lambda s: None], lambda s: True, max_schedules=1)


# -- the driver's own rules ------------------------------------------------------------------


def test_line_granularity_finds_the_race_on_one_line_pairs() -> None:
    def read_then_write(s: State) -> None:
        value = s.n
        s.n = value + 1

    result = explore(
        locked_setup,
        [read_then_write, read_then_write],
        lambda s: s.n == 2,
        strategy="dfs",
        granularity="line",
    )
    assert result.kind == "invariant"
    with pytest.raises(ValueError, match="granularity"):
        ThreadDriver(granularity="bytecode")


def test_user_code_is_neither_stdlib_nor_critsec() -> None:
    assert default_user_code(__file__)
    assert not default_user_code(threading.__file__)
    assert not default_user_code(critsec.__file__)
    assert not default_user_code(pytest.__file__)  # site-packages
    assert default_user_code("<stdin>") and default_user_code("<string>")  # exec, compile
    assert not default_user_code(_demo.__file__)  # the lab is critsec: it uses include=


@dataclasses.dataclass
class Point:
    x: int


Pair = collections.namedtuple("Pair", "a b")


def test_methods_the_standard_library_generates_under_string_are_not_the_users() -> None:
    assert generated(Point.__init__.__code__) and generated(Point.__eq__.__code__)
    assert generated(Pair.__new__.__code__)
    namespace: dict[str, Any] = {}
    exec("def bump(s):\n    s.n += 1\n", namespace)
    assert not generated(namespace["bump"].__code__)


def test_a_race_in_code_run_by_exec_is_found() -> None:
    # exec's code is the user's: it used to run without switch points, and
    # dfs "proved" this lost update clean.
    namespace: dict[str, Any] = {}
    exec(compile("def bump(s):\n    s.n += 1\n", "<string>", "exec"), namespace)
    bump = namespace["bump"]
    result = explore(lambda: State(n=0), [bump, bump], lambda s: s.n == 2, strategy="dfs")
    assert result.kind == "invariant", result


def test_primitives_made_outside_a_schedule_are_real() -> None:
    explore(reset_counter, [increment], counter_is_zero, strategy="dfs")
    assert type(threading.Lock()).__module__ == "_thread"
    assert type(queue.SimpleQueue()).__module__ == "_queue"


# -- more primitives and the trace's synchronisation rows -------------------------------------


def test_a_timed_acquire_may_succeed_or_time_out() -> None:
    outcomes: set[bool] = set()

    def holder(s: State) -> None:
        with s.lock:
            pass

    def impatient(s: State) -> None:
        s.got = s.lock.acquire(timeout=0.5)
        if s.got:
            s.lock.release()

    def record(s: State) -> bool:
        outcomes.add(s.got)
        return True

    result = explore(
        lambda: State(lock=threading.Lock(), got=None),
        [holder, impatient],
        record,
        strategy="dfs",
        preemption_bound=2,
    )
    assert result.exhausted and outcomes == {True, False}


def test_a_barrier_missing_a_party_deadlocks_and_says_where() -> None:
    def party(s: State) -> None:
        s.barrier.wait()

    result = explore(
        lambda: State(barrier=threading.Barrier(3)), [party, party], lambda s: True, seed=0
    )
    assert result.kind == "deadlock"
    assert "(in State.barrier.wait)" in result.message
    assert "s.barrier.wait()" in result.trace


def test_queue_calls_are_rows_of_the_trace() -> None:
    def produce(s: State) -> None:
        s.q.put("x")
        s.q.put("y")  # every call is a row, not only a function's first

    def consume(s: State) -> None:
        s.got = s.q.get()

    result = explore(
        lambda: State(q=queue.Queue(), got=None),
        [consume, produce],
        lambda s: False,  # fail, to get the trace
        strategy="dfs",
    )
    texts = [e.text for e in result.events]
    assert "State.q.put('x')" in texts and "State.q.get() ➜ 'x'" in texts
    assert "State.q.put('y')" in texts


def test_an_exception_while_another_task_waits_unwinds_everything() -> None:
    def waiter(s: State) -> None:
        s.event.wait()

    def boom(s: State) -> None:
        raise ValueError("no event for you")

    result = explore(
        lambda: State(event=threading.Event()), [waiter, boom], lambda s: True, strategy="dfs"
    )
    assert result.kind == "exception" and "no event for you" in result.message
    # no_thread_leaks checks that the waiting thread is gone


def test_explore_inside_a_task_is_refused() -> None:
    def nested(s: State) -> None:
        explore(reset_counter, [increment], counter_is_zero, max_schedules=1)

    result = explore(lambda: None, [nested], lambda s: True, strategy="dfs")
    assert result.kind == "exception" and "already running" in result.message


def note_cpus(s: dict[str, set[int]]) -> None:
    s[threading.current_thread().name] = os.sched_getaffinity(0)


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and two CPUs",
)
def test_a_schedule_runs_its_threads_on_one_cpu_and_gives_the_caller_its_cpus_back() -> None:
    # One task runs at a time: on one CPU a hand-off skips the cross-CPU
    # wake-up (see _launch.on_one_cpu).
    before = os.sched_getaffinity(0)
    seen: list[dict[str, set[int]]] = []

    def keep(s: dict[str, set[int]]) -> bool:
        seen.append(dict(s))
        return True

    result = explore(dict, [note_cpus] * 3, keep, strategy="random", max_schedules=3)
    assert not result.failed and len(seen) == 3
    for cpus in seen:
        assert len(cpus) == 3  # every task thread said
        (only,) = {frozenset(c) for c in cpus.values()}  # the same set for all...
        assert len(only) == 1 and only <= before  # ...of one CPU the caller may use
    assert os.sched_getaffinity(0) == before


def test_a_task_starting_a_thread_is_refused() -> None:
    def starter(s: State) -> None:
        threading.Thread(target=print).start()

    result = explore(lambda: None, [starter], lambda s: True, strategy="dfs")
    assert result.kind == "exception" and "started a thread" in result.message


@pytest.mark.skipif(len(BACKENDS) < 2, reason="only sys.settrace on this Python")
def test_both_backends_place_the_same_switch_points() -> None:
    def outcomes(backend: str) -> list[tuple[str | None, tuple[Event, ...]]]:
        driver = ThreadDriver(backend=backend)
        strategy, rng, seen = DFSStrategy(preemption_bound=2), random.Random(0), []
        while True:
            strategy.begin(rng)
            scheduler, recorder = Scheduler(strategy), Recorder()
            outcome = driver.run(
                locked_setup,
                [locked_increment, locked_increment],
                lambda s: s.n == 2,
                scheduler,
                recorder,
            )
            seen.append((outcome.kind, tuple(recorder.events)))
            if not strategy.end(scheduler.steps):
                return seen

    assert outcomes("monitoring") == outcomes("settrace")


def test_the_runnable_set_is_offered_in_task_order_with_woken_waiters_in_place() -> None:
    # Task 0 blocks on the lock task 2 holds while task 1 runs free: once
    # task 2 lets go, the runnable set must be (0, 1, ...) again, not the
    # free tasks followed by the woken one -- strategies and replays rely on
    # one order (the driver keeps the set as tasks wait and finish).
    # (The offers are read from dfs's path: a strategy defined here would
    # be the user's code, with switch points of its own.)
    driver, strategy, rng = ThreadDriver(), DFSStrategy(), random.Random(0)
    offers: list[tuple[int, ...]] = []
    for _ in range(300):
        strategy.begin(rng)
        scheduler = Scheduler(strategy)
        outcome = driver.run(
            locked_setup, [locked_increment] * 3, lambda s: s.n == 3, scheduler, Recorder()
        )
        assert outcome.kind is None
        offers += [node.runnable for node in strategy.path]
        if not strategy.end(scheduler.steps):
            break
    assert all(list(offer) == sorted(offer) for offer in offers)
    # The case that matters was offered: task 0 runnable again beside task 1.
    assert any(offer[:2] == (0, 1) for offer in offers)


import_time_lock = threading.Lock()


def with_import_time_lock(_: object) -> None:
    global counter
    with import_time_lock:
        counter += 1


def acquire_import_time_lock(_: object) -> None:
    global counter
    import_time_lock.acquire()
    counter += 1
    import_time_lock.release()


@pytest.mark.parametrize("task", [with_import_time_lock, acquire_import_time_lock])
def test_a_lock_made_at_import_time_is_stood_in_for_not_refused(task: Any) -> None:
    # A module global made at import: the explorer controls a stand-in for
    # it while each schedule runs (it used to refuse it, a false alarm).
    real = import_time_lock
    result = explore(
        reset_counter, [task, task], lambda _: counter == 2, strategy="dfs", reduction=False
    )
    assert not result.failed, result
    assert result.schedules > 100  # every interleaving, the stand-in's included
    assert import_time_lock is real and not real.locked()


def test_a_lock_a_task_closes_over_is_stood_in_for_too() -> None:
    def make() -> Any:
        lock = threading.Lock()  # made before explore, by the task's factory

        def bump(s: State) -> None:
            with lock:
                value = s.n
                s.n = value + 1

        return bump, lock

    bump, real = make()
    result = explore(lambda: State(n=0), [bump, bump], lambda s: s.n == 2, strategy="dfs")
    assert not result.failed and result.exhausted, result
    assert bump.__closure__ is not None and bump.__closure__[0].cell_contents is real


class Config:
    """A class made at import time: on 3.11 its cached_property holds a
    real RLock (made then) around the getter -- user code -- while it runs."""

    @functools.cached_property
    def value(self) -> int:
        first = 1
        return first + 1


class Shout(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text.upper()


shout_stream = io.StringIO()
shout_handler = logging.StreamHandler(shout_stream)  # its lock: a real RLock, made now
shout_handler.setFormatter(Shout())
shout_log = logging.getLogger("critsec-test-shout")
shout_log.addHandler(shout_handler)
shout_log.propagate = False


def test_the_users_code_called_back_by_a_library_is_one_step_with_the_call() -> None:
    # A switch inside the getter (or the formatter) would leave the library's
    # real lock held while the other task blocks on it for real: before,
    # these schedules hung for ever (the formatter's on 3.13 too).
    result = explore(Config, [lambda c: c.value, lambda c: c.value], lambda c: c.value == 2)
    assert not result.failed, result

    def setup() -> io.StringIO:
        shout_stream.seek(0)
        shout_stream.truncate()
        return shout_stream

    def say(_: io.StringIO) -> None:
        shout_log.warning("hello")

    result = explore(setup, [say, say], lambda s: s.getvalue() == "HELLO\nHELLO\n")
    assert not result.failed, result


def test_a_task_blocked_for_real_is_stopped_by_the_watchdog_which_names_it() -> None:
    # A read of a pipe nobody writes to: nothing the explorer controls. The
    # schedule used to hang for ever; the watchdog ends it at the deadline.
    r, w = os.pipe()

    def reader(s: State) -> None:
        s.got = os.read(r, 1)

    try:
        with pytest.raises(ScheduleStalled) as stalled:
            explore(State, [reader, lambda s: None], lambda s: True, timeout=0.5)
        message = str(stalled.value)
        assert message.startswith("task 'reader' made no step for ")
        assert "test_explore_threads.py:" in message and ": s.got = os.read(r, 1): " in message
        assert "blocks for real" in message
    finally:
        os.write(w, b"x")  # the blocked thread returns, and unwinds at its next step
        for thread in threading.enumerate():
            if thread.name.startswith("critsec-task-"):
                thread.join()
        os.close(r)
        os.close(w)


def test_a_lock_made_at_import_time_elsewhere_fails_with_a_hint_instead_of_hanging() -> None:
    # Kept in an object rather than as a module global: no stand-in.
    result = explore(
        reset_counter,
        [lambda _: holder.lock.acquire(), lambda _: holder.lock.acquire()],
        lambda _: True,
        strategy="dfs",
    )
    assert result.kind == "exception"
    assert "UncontrolledPrimitive" in result.message and "setup()" in result.message
    assert not holder.lock.locked()


class _Holder:
    lock = threading.Lock()


holder = _Holder()


def test_a_queue_made_at_import_time_fails_with_a_hint() -> None:
    result = explore(lambda: None, [lambda s: import_time_queue.get()], lambda s: True)
    assert result.kind == "exception" and "Queue was made outside" in result.message


import_time_queue: queue.Queue[int] = queue.Queue()


# -- check-then-act on a dict: `key in d` reads d[key], `del d[key]` writes it -----------


def cache_setup() -> dict[str, dict[str, int]]:
    return {"cache": {"k": 1}}


def take(state: dict[str, dict[str, int]]) -> None:
    if "k" in state["cache"]:
        del state["cache"]["k"]  # KeyError when the other task deleted it first


def test_a_check_then_delete_on_a_dict_is_a_marked_lost_update() -> None:
    result = explore(cache_setup, [take, take], lambda s: True, strategy="dfs")
    assert result.failed and result.kind == "exception" and "KeyError" in result.message
    item = "dict['cache']['k']"
    rows = [(e.task, e.kind, e.value) for e in result.events if e.location == item]
    # Both check, one deletes, the other's delete fails: it is still a row.
    assert (0, "read", "True") in rows and (1, "read", "True") in rows
    writes = sorted(r for r in rows if r[1] == "write")
    assert writes == [(0, "write", "<deleted>"), (1, "write", "<deleted>")]
    reads = [e for e in result.events if e.location == item and e.kind == "read"]
    assert all(e.source == 'if "k" in state["cache"]:' for e in reads)
    assert "'k' in dict['cache'] ➜ True" in {e.text for e in reads}
    # The check of one task, the other's delete and its own are marked.
    table = [line.split("|") for line in result.trace.splitlines() if " | " in line]
    marked = [int(cells[0]) for cells in table if any("⚠1" in cell for cell in cells)]
    kinds = [(result.events[n - 1].kind, result.events[n - 1].location) for n in marked]
    assert kinds == [("read", item), ("write", item), ("write", item)]
    assert {result.events[n - 1].task for n in marked} == {0, 1}
    assert f"{item} ➜ True ⚠1" in result.trace
    assert f"⚠1 lost update on {item}: " in result.trace
    assert "read True" in result.trace and "wrote <deleted> over it" in result.trace


def test_not_in_and_deletes_of_attributes_and_globals_are_accesses() -> None:
    def drop(s: State) -> None:
        global counter
        if "k" not in s.table:
            s.table["k"] = 0
        del s.flag
        del counter

    result = explore(lambda: State(table={}, flag=True), [drop], lambda s: False, strategy="dfs")
    reset_counter()  # the global the task deleted
    rows = [(e.kind, e.location, e.value) for e in result.events if e.kind in ("read", "write")]
    assert ("read", "State.table['k']", "False") in rows
    assert ("write", "State.table['k']", "0") in rows
    assert ("write", "State.flag", "<deleted>") in rows
    assert ("write", "global counter", "<deleted>") in rows


def test_a_membership_test_of_its_own_is_not_run_to_peek() -> None:
    class Picky(dict[str, int]):
        calls = 0

        def __contains__(self, key: object) -> bool:
            Picky.calls += 1
            return super().__contains__(key)

    def check(s: State) -> None:
        if "k" in s.table:
            pass

    result = explore(lambda: State(table=Picky(k=1)), [check], lambda s: False, strategy="dfs")
    assert result.failed and Picky.calls == 1  # the program's own test, no peek
    assert not [e for e in result.events if e.location == "State.table['k']"]


# -- partial-order sampling on many threads ------------------------------------------------


def two_stage_state() -> State:
    return State(data1=0, data2=0, m1=threading.Lock(), m2=threading.Lock(), seen=None)


def two_stage_writer(s: State) -> None:
    with s.m1:
        s.data1 = 1
    with s.m2:
        s.data2 = s.data1 + 1


def two_stage_reader(s: State) -> None:
    with s.m1:
        if s.data1 == 0:
            return
        t1 = s.data1
    with s.m2:
        t2 = s.data2
    s.seen = (t1, t2)


def test_pos_finds_the_reader_between_a_writers_two_stages_and_replays_it() -> None:
    # SCTBench's TwoStage with 10 writers (benchmarks/programs/twostage_100
    # has 100): the reader must run whole between the first writer's
    # stages, among ten other tasks -- a random walk takes up to 600
    # schedules for it, POS a few dozen.
    tasks = [*[two_stage_writer] * 10, two_stage_reader]

    def invariant(s: State) -> bool:
        return s.seen is None or s.seen[1] == s.seen[0] + 1

    result = explore(two_stage_state, tasks, invariant, strategy="pos", seed=0, max_schedules=300)
    assert result.failed and result.kind == "invariant", result.message
    assert result.schedule is not None
    again = replay(two_stage_state, tasks, invariant, result.schedule)
    assert again.failed and again.events == result.events
