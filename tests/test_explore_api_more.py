"""``explore``, ``replay`` and ``check`` as a user calls them: argument
checks, an invariant that raises, a search bounded by time, and the text
of results -- on thread tasks, whose runs the scheduler fixes completely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from critsec.explorer import check, explore, replay


@dataclass
class Counter:
    n: int = 0


def bump(c: Counter) -> None:
    c.n += 1


def bumped_twice(c: Counter) -> bool:
    return c.n == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"preemption_bound": 1}, ValueError, "preemption_bound applies to strategy='dfs' only"),
        ({"max_schedules": True}, TypeError, "max_schedules must be an int, got bool"),
        ({"max_schedules": "10"}, TypeError, "max_schedules must be an int, got str"),
        ({"max_schedules": 0}, ValueError, "max_schedules must be >= 1, got 0"),
        ({"timeout": 0}, ValueError, "timeout must be > 0 seconds, got 0"),
        ({"granularity": "word"}, ValueError, "unknown granularity 'word'; valid: "),
    ],
)
def test_explore_refuses_bad_options(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        explore(Counter, [bump, bump], bumped_twice, **kwargs)


def test_explore_refuses_bad_tasks_setup_and_invariant() -> None:
    with pytest.raises(ValueError, match="explore needs at least one task"):
        explore(Counter, [], bumped_twice)
    with pytest.raises(TypeError, match="a task must be callable, got int"):
        explore(Counter, [bump, 3], bumped_twice)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="setup and invariant must be callables"):
        explore(Counter, [bump], True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="setup and invariant must be callables"):
        explore(None, [bump], bumped_twice)  # type: ignore[arg-type]


def test_an_invariant_that_raises_is_a_failure_of_its_own_kind() -> None:
    def nosy(c: Counter) -> bool:
        raise LookupError("no such thing")

    result = explore(Counter, [bump], nosy, strategy="dfs")
    assert result.failed and result.kind == "invariant"
    assert result.message == "the invariant raised LookupError: no such thing"


def test_a_result_reads_as_its_trace_and_how_to_replay_it() -> None:
    result = explore(Counter, [bump, bump], bumped_twice, strategy="dfs")
    assert result.failed and result.schedule is not None
    text = str(result)
    assert text.splitlines()[0].startswith("invariant failure after ")
    assert "lost update on Counter.n" in text
    assert text.splitlines()[-1] == f"replay with schedule {result.schedule}"
    again = replay(Counter, [bump, bump], bumped_twice, result.schedule)
    assert again.events == result.events


def test_a_replay_that_passes_says_so() -> None:
    found = explore(Counter, [bump, bump], bumped_twice, strategy="dfs")
    assert found.schedule is not None
    # The same schedule on a program that no longer fails.
    fine = replay(Counter, [bump, bump], lambda c: c.n >= 1, found.schedule)
    assert not fine.failed
    assert str(fine).startswith("the schedule ran without failure (")


def test_check_raises_with_the_trace_and_passes_a_correct_program() -> None:
    with pytest.raises(AssertionError) as failure:
        check(Counter, [bump, bump], bumped_twice, strategy="dfs")
    message = str(failure.value)
    assert message.startswith("critsec: invariant failure after ")
    assert "(strategy dfs, seed 0, " in message
    token = re.search(r"replay: check\(\.\.\., replay='(cs1-[\w-]+)'\)$", message)
    assert token is not None
    with pytest.raises(AssertionError, match="in the replayed schedule"):
        check(Counter, [bump, bump], bumped_twice, replay=token.group(1))
    proof = check(Counter, [bump], lambda c: c.n == 1, strategy="dfs")
    assert proof.exhausted and not proof.failed


def test_a_search_stops_at_its_timeout_without_claiming_a_proof() -> None:
    # Many schedules, all passing; the smallest timeout ends the search after
    # the first one (a schedule takes far longer than a nanosecond).
    result = explore(
        Counter,
        [bump, bump, bump],
        lambda c: c.n >= 1,
        strategy="random",
        seed=1,
        timeout=1e-9,
    )
    assert (result.failed, result.schedules, result.exhausted) == (False, 1, False)
