"""The scheduler and its strategies, on a simulated program.

A "program" here is just how many steps each task has left; ``simulate``
plays one schedule through ``Scheduler.branch`` exactly as a driver would.
That isolates the decision logic from any real threads.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from critsec.explorer._driver import task_roles
from critsec.explorer._scheduler import (
    LIVELOCK_SPINS,
    DFSStrategy,
    ExplorationLimit,
    PCTStrategy,
    POSStrategy,
    RandomStrategy,
    ReplayMismatch,
    ReplayStrategy,
    Scheduler,
    Strategy,
    decode_schedule,
    encode_schedule,
    make_strategy,
)


def simulate(
    strategy: Strategy, steps: list[int], rng: random.Random
) -> tuple[list[int], list[int]]:
    """Run one schedule of tasks with ``steps`` steps each; return the order
    in which tasks ran and the recorded choices."""
    strategy.begin(rng)
    scheduler = Scheduler(strategy)
    left = list(steps)
    current = None
    order = []
    while any(left):
        runnable = [t for t, n in enumerate(left) if n]
        current = scheduler.branch(runnable, current)
        left[current] -= 1
        order.append(current)
    strategy.end(scheduler.steps)
    return order, scheduler.choices


def all_schedules(
    strategy: Strategy, steps: list[int], limit: int = 10_000
) -> list[tuple[int, ...]]:
    rng = random.Random(0)
    seen = []
    for _ in range(limit):
        order, _ = simulate(strategy, steps, rng)
        seen.append(tuple(order))
        if strategy.exhausted:
            return seen
    raise AssertionError("dfs did not finish")


def interleavings(steps: list[int]) -> set[tuple[int, ...]]:
    """Every order of the tasks' steps (the oracle, by brute force)."""
    labels = [t for t, n in enumerate(steps) for _ in range(n)]
    return set(itertools.permutations(labels))


def preemptions(order: tuple[int, ...], steps: list[int]) -> int:
    left = list(steps)
    count = 0
    for previous, task in itertools.pairwise(order):
        left[previous] -= 1
        if task != previous and left[previous]:
            count += 1
    return count


@pytest.mark.parametrize("steps", [[2, 2], [3, 1], [2, 2, 1], [1, 1, 1]])
def test_dfs_visits_every_interleaving_once(steps: list[int]) -> None:
    seen = all_schedules(DFSStrategy(), steps)
    assert len(seen) == len(set(seen))
    assert set(seen) == interleavings(steps)


@pytest.mark.parametrize("bound", [0, 1, 2])
def test_dfs_preemption_bound_keeps_exactly_the_schedules_within_it(bound: int) -> None:
    steps = [2, 2, 1]
    seen = all_schedules(DFSStrategy(bound), steps)
    assert len(seen) == len(set(seen))
    expected = {o for o in interleavings(steps) if preemptions(o, steps) <= bound}
    assert set(seen) == expected


def test_same_seed_same_schedules() -> None:
    for make in (RandomStrategy, PCTStrategy, POSStrategy):
        runs = []
        for _ in range(2):
            rng, strategy = random.Random(42), make()
            runs.append([simulate(strategy, [5, 5, 5], rng)[0] for _ in range(20)])
        assert runs[0] == runs[1]
        assert len({tuple(order) for order in runs[0]}) > 1  # it does explore


def test_pct_depth_one_never_preempts() -> None:
    # Without change points PCT runs the highest-priority task to its end.
    strategy, rng = PCTStrategy(depth=1), random.Random(3)
    for _ in range(20):
        order, _ = simulate(strategy, [3, 3, 2], rng)
        assert preemptions(tuple(order), [3, 3, 2]) == 0


def test_pct_depth_two_finds_a_single_preemption() -> None:
    # A bug of depth 2 (one preemption at one exact point) must turn up.
    strategy, rng = PCTStrategy(depth=2), random.Random(7)
    wanted = (0, 1, 1, 1, 0, 0)
    orders = {tuple(simulate(strategy, [3, 3], rng)[0]) for _ in range(400)}
    assert wanted in orders


def test_task_roles_group_tasks_that_run_the_same_callable() -> None:
    class Box:
        def put(self, state: object) -> None: ...

    def writer(state: object) -> None: ...

    def reader(state: object) -> None: ...

    box, other = Box(), Box()
    unhashable = type("Unhashable", (), {"__call__": writer, "__hash__": None})()
    tasks = [writer, writer, reader, writer, box.put, box.put, other.put, unhashable, unhashable]
    assert task_roles(tasks) == (0, 0, 2, 0, 4, 4, 6, 7, 8)


def test_pct_draws_priorities_by_role_every_other_schedule() -> None:
    # Twenty identical writers and a reader, one step each, no change
    # points: they run in priority order. Drawn uniformly, the reader is
    # among the first two to run 2 times in 21; drawn role first, 3 in 4.
    strategy, rng = PCTStrategy(depth=1), random.Random(5)
    strategy.cast([0] * 20 + [20])
    early = [simulate(strategy, [1] * 21, rng)[0].index(20) < 2 for _ in range(400)]
    uniform, by_role = early[0::2], early[1::2]
    assert sum(by_role) > 0.6 * len(by_role)
    assert sum(uniform) < 0.2 * len(uniform)


def test_pct_by_role_puts_a_reader_between_two_stages_of_identical_writers() -> None:
    # SCTBench's TwoStage in the simulator: 30 writers of three steps (the
    # first stage, the gap, the second stage) and a reader of two. The bug:
    # the reader runs after some writer's first stage, before any second.
    # It needs the reader second in priority and a change point in the
    # first writer's gap: drawn by task, rare; drawn by role, not.
    writers = 30
    steps = [3] * writers + [2]

    def reader_between_stages(order: list[int]) -> bool:
        done = [0] * len(steps)
        first_stage = second_stage = None
        reader = []
        for at, task in enumerate(order):
            done[task] += 1
            if task == writers:
                reader.append(at)
            elif done[task] == 1 and first_stage is None:
                first_stage = at
            elif done[task] == 3 and second_stage is None:
                second_stage = at
        assert second_stage is not None
        return first_stage is not None and first_stage < reader[0] and reader[1] < second_stage

    found = []
    for roles in ([0] * writers + [writers], range(writers + 1)):
        strategy, rng = PCTStrategy(), random.Random(1)
        strategy.cast(list(roles))
        orders = [simulate(strategy, steps, rng)[0] for _ in range(400)]
        found.append(sum(map(reader_between_stages, orders)))
    by_role, by_task = found
    assert by_role > 5 * by_task


def test_pct_with_every_task_its_own_role_draws_as_before() -> None:
    # The same seed gives the same schedules whether roles were given or not
    # when no two tasks share one (explore always gives them).
    runs = []
    for roles in ((), (0, 1, 2)):
        strategy, rng = PCTStrategy(), random.Random(9)
        strategy.cast(roles)
        runs.append([simulate(strategy, [4, 3, 5], rng)[0] for _ in range(30)])
    assert runs[0] == runs[1]


def test_forced_moves_are_not_recorded_and_replay_reproduces() -> None:
    order, choices = simulate(RandomStrategy(), [4, 1], random.Random(5))
    assert len(choices) < len(order)  # after task 1 ends, task 0 runs without a decision
    replay = ReplayStrategy(decode_schedule(encode_schedule(choices)))
    replayed, again = simulate(replay, [4, 1], random.Random(99))
    assert (replayed, again) == (order, choices)


def test_replay_detects_a_token_that_does_not_fit() -> None:
    with pytest.raises(ReplayMismatch, match="only"):
        simulate(ReplayStrategy([2]), [1, 1], random.Random(0))
    with pytest.raises(ReplayMismatch, match="asks for more"):
        simulate(ReplayStrategy([]), [1, 1], random.Random(0))


def test_step_limit_suggests_the_cause() -> None:
    scheduler = Scheduler(RandomStrategy(), max_steps=3)
    scheduler.strategy.begin(random.Random(0))
    for _ in range(3):
        scheduler.branch([0, 1], 0)
    with pytest.raises(ExplorationLimit, match="spinning"):
        scheduler.branch([0, 1], 0)


@pytest.mark.parametrize(
    "strategy", [RandomStrategy(), PCTStrategy(), POSStrategy(), DFSStrategy()]
)
def test_a_task_that_spun_is_not_picked_next_while_another_can_run(strategy: Strategy) -> None:
    scheduler = Scheduler(strategy)
    strategy.begin(random.Random(0))
    for _ in range(20):
        assert not scheduler.spun(0)
        assert scheduler.branch([0, 1, 2], 0) != 0
        assert scheduler.spun(1) is False
        assert scheduler.branch([1], 1) == 1  # alone, it runs: no deadlock made up
    assert scheduler.branch([0, 1, 2], 0) in (0, 1, 2)  # only the decision after a spin


def reader_between_stages(order: list[int], writers: int, reader_steps: int) -> bool:
    """TwoStage's bug in the simulator: task 0 (the reader) takes all its
    steps after some writer's third (its first stage) and before any
    writer's sixth (its second)."""
    done = [0] * (writers + 1)
    for task in order:
        if task == 0 and done[0] == 0 and max(done[1:]) < 3:
            return False  # the reader came before any first stage
        done[task] += 1
        if task and done[task] == 6:
            return False
        if done[0] == reader_steps:
            return True
    return False


def test_pos_runs_a_task_between_two_stages_far_more_often_than_a_random_walk() -> None:
    # A random walk picks afresh at every step, so a task that must take
    # several steps in a row among many others almost never does; POS
    # keeps each task's next-step priority while others run.
    steps = [8] + [6] * 10
    hits = {}
    for make in (RandomStrategy, POSStrategy):
        strategy, rng = make(), random.Random(1)
        orders = (simulate(strategy, steps, rng)[0] for _ in range(1000))
        hits[make.name] = sum(reader_between_stages(order, 10, 8) for order in orders)
    assert hits["pos"] >= 10 and hits["pos"] >= 4 * max(hits["random"], 1), hits


def test_pos_gives_every_step_a_fresh_priority_and_a_spinner_the_lowest() -> None:
    strategy = POSStrategy()
    scheduler = Scheduler(strategy)
    strategy.begin(random.Random(0))
    ran = [scheduler.branch([0, 1, 2], None) for _ in range(30)]
    assert len(set(ran)) == 3  # priorities change as tasks run: not one task to its end
    spinner = ran[-1]
    scheduler.spun(spinner)
    others = [t for t in (0, 1, 2) if t != spinner]
    assert scheduler.branch([0, 1, 2], spinner) in others
    assert strategy.priority[spinner] < min(strategy.priority[t] for t in others)


def test_pct_drops_a_spinner_below_every_other_task() -> None:
    strategy = PCTStrategy(depth=1)
    scheduler = Scheduler(strategy)
    strategy.begin(random.Random(0))
    first = scheduler.branch([0, 1, 2], None)
    scheduler.spun(first)
    second = scheduler.branch([0, 1, 2], first)
    # The spinner stays below the others afterwards, not only at the next decision.
    assert {scheduler.branch([0, 1, 2], second) for _ in range(5)} == {second}
    scheduler.spun(second)
    third = scheduler.branch([0, 1, 2], second)
    assert third not in (first, second)
    assert scheduler.branch([first, second], third) == first  # the earlier spinner first


def test_only_spins_for_livelock_spins_rounds_in_a_row_are_a_livelock() -> None:
    scheduler = Scheduler(RandomStrategy())
    scheduler.strategy.begin(random.Random(0))
    for _ in range(LIVELOCK_SPINS - 1):
        assert not scheduler.spun(0)
    scheduler.progressed()
    assert not any(scheduler.spun(task % 2) for task in range(LIVELOCK_SPINS - 1))
    assert scheduler.spun(1)


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=200))
def test_tokens_round_trip(choices: list[int]) -> None:
    token = encode_schedule(choices)
    assert token.startswith("cs1-") and token.isprintable() and " " not in token
    assert decode_schedule(token) == choices


@pytest.mark.parametrize("token", ["", "cs1-", "cs1-!!!", "nope", "cs1-eNoDAAAAAA"])
def test_damaged_tokens_are_rejected(token: str) -> None:
    with pytest.raises(ValueError):
        decode_schedule(token)


def test_bad_strategy_options() -> None:
    with pytest.raises(ValueError, match="valid strategies"):
        make_strategy("bfs")
    with pytest.raises(ValueError):
        DFSStrategy(-1)
    with pytest.raises(ValueError):
        PCTStrategy(0)


def test_default_pct_depths_reach_a_three_preemption_bug_depth_three_cannot() -> None:
    # PCT preempts only at its depth - 1 change points: depth 3 can never
    # make three preemptions; the default depths (3, 4, 5) take turns and can.
    steps = [4, 4]
    wanted = (0, 1, 0, 1, 1, 1, 0, 0)
    assert preemptions(wanted, steps) == 3
    shallow, rng = PCTStrategy(depth=3), random.Random(11)
    orders = [tuple(simulate(shallow, steps, rng)[0]) for _ in range(2000)]
    assert max(preemptions(o, steps) for o in orders) == 2
    default, rng = PCTStrategy(), random.Random(11)
    orders = [tuple(simulate(default, steps, rng)[0]) for _ in range(2000)]
    assert wanted in orders
    assert [default.depths[i % 3] for i in range(4)] == [3, 4, 5, 3]
