"""Sanity checks of the benchmark's programs themselves (benchmarks/programs).

Fast and deterministic: shapes, flags, and one sequential run of every
program -- no tool, no timing. Every program, buggy or not, must satisfy its
invariant when its tasks run one after another in the listed order: the
bugs in the suite are concurrency bugs, not plain logic errors.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import programs  # benchmarks/ is on the path (above), not installed

NAMES = programs.names()
#: Programs with many tasks: SCTBench's scaled ones, N workers and a checker
#: (or, for wronglock_3, a checker and N workers).
SCALED = {"twostage_100", "reorder_3", "reorder_10", "fixed_reorder_3", "wronglock_3"}


def run_sequentially(program: ModuleType) -> object:
    """``setup()``, then each task to its end in the listed order; the state."""
    state = program.setup()
    kind = programs.kind(program)
    if kind == "blocking":
        for task in program.tasks:
            task(state)
    elif kind == "generator":
        for task in program.tasks:
            for request in task(state):
                # A bare `yield` is a switch point; anything else is a wait
                # request, which a task running alone must never need.
                assert request is None, f"{task.__name__} would wait when run alone"
    else:

        async def main() -> None:
            for task in program.tasks:
                await task(state)

        asyncio.run(main())
    return state


def test_suite_size() -> None:
    buggy = [n for n in NAMES if programs.load(n).BUG]
    assert len(buggy) >= 15
    assert len(NAMES) - len(buggy) >= 5


@pytest.mark.parametrize("name", NAMES)
def test_shape(name: str) -> None:
    p = programs.load(name)
    assert isinstance(p.BUG, bool)
    assert isinstance(p.DESCRIPTION, str) and p.DESCRIPTION and "\n" not in p.DESCRIPTION
    assert callable(p.setup) and callable(p.invariant)
    # 2 to 4 tasks (SCTBench's token_ring has 4); the scaled SCTBench programs
    # (TwoStage_100, reorder_10, ...) as many as their name says, plus one
    most = int(name.rsplit("_", 1)[1]) + 1 if name in SCALED else 4
    assert 2 <= len(p.tasks) <= most and all(callable(t) for t in p.tasks)
    # one kind of task per program: the explorers refuse mixtures
    kinds = {programs.kind(_one_task(p, t)) for t in p.tasks}
    assert len(kinds) == 1
    assert kinds <= {"blocking", "generator", "async"}


def _one_task(p: ModuleType, task: object) -> ModuleType:
    """A stand-in module whose only task is ``task``, to classify it."""
    single = ModuleType(p.__name__)
    single.tasks = [task]  # type: ignore[attr-defined]
    return single


@pytest.mark.parametrize("name", NAMES)
def test_sequential_run_satisfies_invariant(name: str) -> None:
    p = programs.load(name)
    assert p.invariant(run_sequentially(p))


@pytest.mark.parametrize("name", NAMES)
def test_setup_gives_fresh_state(name: str) -> None:
    # Each schedule starts from setup(): a run must not leak into the next.
    p = programs.load(name)
    run_sequentially(p)
    assert p.invariant(run_sequentially(p))


def test_three_preemptions_needs_exactly_three() -> None:
    # The program's claim, proved with the explorer's exhaustive search: no
    # schedule with two preemptions breaks it, and one with three does.
    from critsec.explorer import explore

    p = programs.load("three_preemptions")
    two = explore(p.setup, p.tasks, p.invariant, strategy="dfs", preemption_bound=2)
    assert not two.failed and two.exhausted
    three = explore(p.setup, p.tasks, p.invariant, strategy="dfs", preemption_bound=3)
    assert three.failed and three.kind == "invariant"


@pytest.mark.parametrize(
    ("name", "within"),
    [
        # One early preemption, many tasks after it (measured: 9, 17, 5).
        ("reorder_10", 100),
        ("wronglock_3", 100),
        ("token_ring", 100),
        # A late one: depth first still gets there (measured: 50).
        ("late_iteration", 300),
    ],
)
def test_dfs_finds_early_and_late_preemption_bugs(name: str, within: int) -> None:
    # Reduced dfs mostly goes depth first, but every few schedules reverses
    # the race nearest the start: depth first alone tried thousands of
    # reorderings of reorder_10's setters before it moved the checker.
    from critsec.explorer import explore

    p = programs.load(name)
    result = explore(p.setup, p.tasks, p.invariant, strategy="dfs", max_schedules=within)
    assert result.failed and result.kind == "invariant", result.schedules


def test_pct_finds_twostage_100_by_drawing_over_roles() -> None:
    # 100 identical writers and a reader: the default strategy draws every
    # other schedule over roles (measured: 12, 6 and 4 schedules on seeds
    # 1-3, 28 the median of seeds 1-11; drawn over tasks alone, none in
    # 1,000 on seeds 0-1, about one schedule in 10,000).
    from critsec.explorer import explore

    p = programs.load("twostage_100")
    result = explore(p.setup, p.tasks, p.invariant, max_schedules=300, seed=1)
    assert result.failed and result.kind == "invariant", result.schedules
