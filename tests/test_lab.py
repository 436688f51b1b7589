"""The lab's experiments, run in-process on real runtimes, small sizes."""

from __future__ import annotations

import threading

import pytest

import critsec
from critsec import lab
from critsec.lab._demo import PendingStep

ALL = list(critsec.RUNTIMES)

COUNTER_KEYS = {
    "runtime",
    "lock",
    "expected",
    "observed",
    "lost_updates",
    "operations",
    "seconds",
    "ns_per_op",
}
PIPELINE_KEYS = {
    "runtime",
    "produced",
    "consumed",
    "lost",
    "duplicated",
    "max_qsize",
    "seconds",
    "items_per_s",
}


def test_all_names_exist() -> None:
    assert sorted(lab.__all__) == sorted(set(lab.__all__))
    for name in lab.__all__:
        assert getattr(lab, name) is not None, name


# -- counter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [(1, 10 + 5), (2, 10 + 5 - 6), (3, 10 + 5 - 6 + 5), (4, 10 + 5 - 6 + 5 - 6)],
)
def test_counter_split_adds_on_even_tasks_and_subtracts_one_more_on_odd(
    tasks: int, expected: int
) -> None:
    plan = lab.counter_tasks(tasks, 5)
    assert plan[0] == (5, 1)
    assert lab.INITIAL + sum(n * delta for n, delta in plan) == expected
    result = lab.run_counter(critsec.runtime("threads"), lock=True, tasks=tasks, iterations=5)
    assert (result.expected, result.observed) == (expected, expected)
    assert result.operations == sum(n for n, _ in plan)


@pytest.mark.parametrize("name", ALL)
def test_counter_with_lock_is_exact_on_every_runtime(name: str) -> None:
    result = lab.run_counter(critsec.runtime(name), lock=True, iterations=2_000)
    assert result.expected == 9
    assert result.observed == 9
    assert result.lost_updates == 0 and result.exact
    assert result.operations == 4_001
    assert result.ns_per_op > 0
    record = result.to_json()
    assert record.keys() >= COUNTER_KEYS
    assert record["runtime"] == name and record["lock"] is True


@pytest.mark.parametrize("name", ["coroutines", "asyncio"])
def test_cooperative_counter_without_lock_loses_every_increment(name: str) -> None:
    # The switch sits between read and write: with round-robin scheduling each
    # task only sees its own writes, and the subtracter, one step longer,
    # writes last.
    result = lab.run_counter(critsec.runtime(name), lock=False, iterations=1_000)
    assert result.observed == lab.INITIAL - 1_001
    assert result.lost_updates == 1_000


def test_threads_counter_without_lock_accounts_honestly() -> None:
    # Whether updates are lost is luck; the accounting is not.
    result = lab.run_counter(critsec.runtime("threads"), lock=False, tasks=3, iterations=20_000)
    assert result.expected == lab.INITIAL + 2 * 20_000 - 20_001
    assert result.lost_updates == abs(result.expected - result.observed)
    assert lab.INITIAL - 20_001 <= result.observed <= lab.INITIAL + 40_000


def test_lesson_coroutine_needs_no_lock() -> None:
    rt = critsec.runtime("coroutines", order="random", seed=7)
    result = lab.run_counter(rt, lock=False, iterations=1_000, worker=lab.lesson_coroutine)
    assert result.exact


def test_run_counter_refuses_non_positive_sizes() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        lab.run_counter("threads", tasks=0)


# -- the demo's proofs ---------------------------------------------------------------------


def test_forced_interleaving_loses_exactly_one_update() -> None:
    for _ in range(3):  # deterministic: the same every time
        result = lab.forced_interleaving()
        assert (result.expected, result.observed, result.lost_updates) == (10, 11, 1)


def test_lesson_threads_run_the_lesson_sizes_and_account() -> None:
    result = lab.run_lesson_threads(10_000)
    assert result.expected == 9
    assert result.operations == 20_001
    assert -9_991 <= result.observed <= 10_010


def test_a_step_that_raises_is_a_failed_step_not_a_crash() -> None:
    def body() -> lab._demo.StepOutcome:
        raise critsec.TaskError("producer-0", "ValueError: boom", "Traceback ...\nmore")

    step = PendingStep(9, "broken", "claim", "ran", body).run()
    assert not step.passed
    assert step.explanation == "could not run: task 'producer-0' failed: ValueError: boom"
    assert step.to_json()["passed"] is False


def test_demo_steps_are_the_lessons_five_and_a_death() -> None:
    steps = lab.demo_steps(quick=True)
    assert [step.number for step in steps] == [1, 2, 3, 4, 5, 6]
    assert all(step.claim and step.ran for step in steps)


# -- pipeline ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("producers", "consumers", "items", "maxsize"),
    [(2, 2, 500, 10), (3, 1, 200, 1), (1, 3, 100, 0), (4, 2, 3, 2)],
)
def test_pipeline_delivers_every_item_once_within_the_bound(
    name: str, producers: int, consumers: int, items: int, maxsize: int
) -> None:
    result = lab.run_pipeline(
        critsec.runtime(name),
        producers=producers,
        consumers=consumers,
        items=items,
        maxsize=maxsize,
    )
    assert result.ok
    assert result.produced == result.consumed == items
    assert result.lost == result.duplicated == 0
    # The measurement sees the queue hold something -- except on redis,
    # where an item put while a getter waits is handed straight to it.
    assert result.max_qsize is not None  # None: a run of the consumer side alone
    assert result.max_qsize >= 1 or name == "redis"
    if maxsize:
        assert result.max_qsize <= maxsize
    record = result.to_json()
    assert record.keys() >= PIPELINE_KEYS
    assert record["runtime"] == name


def test_lab_tasks_travel_to_spawned_processes() -> None:
    # spawn pickles every task and argument: the lab's task functions must be
    # module-level and their arguments picklable.
    rt = critsec.runtime("processes", start_method="spawn")
    assert lab.run_counter(rt, lock=True, iterations=200).exact
    assert lab.run_pipeline(rt, producers=2, consumers=1, items=50, maxsize=3).ok


def test_pipeline_result_flags_loss_duplication_and_overflow() -> None:
    good = dict(
        runtime="threads",
        producers=1,
        consumers=1,
        items=3,
        maxsize=2,
        produced=3,
        consumed=3,
        lost=0,
        duplicated=0,
        max_qsize=2,
        seconds=0.5,
    )
    assert lab.PipelineResult(**good).ok  # type: ignore[arg-type]
    for change in ({"lost": 1, "consumed": 2}, {"duplicated": 1, "consumed": 4}, {"max_qsize": 3}):
        assert not lab.PipelineResult(**{**good, **change}).ok  # type: ignore[arg-type]


def test_a_failing_producer_still_stops_the_consumers() -> None:
    # produce_blocking's `finally` shuts the queue down even when a put fails,
    # so the run ends with TaskError instead of consumers waiting forever.
    rt = critsec.runtime("threads")
    q = rt.queue(1)
    left = rt.counter(1)
    consumed: list[int] = []
    started = threading.Event()

    def consumer() -> None:
        started.set()
        consumed.extend(lab.consume_blocking(q))

    class Boom:
        def __iter__(self) -> object:
            yield 1
            raise RuntimeError("producer broke")

    with pytest.raises(critsec.TaskError, match="producer broke"):
        rt.run(critsec.task(lab.produce_blocking, q, left, Boom()), consumer, timeout=30)
    assert started.is_set()
    assert consumed == [1]
    assert q.is_shutdown
