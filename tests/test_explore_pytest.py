"""The explorer in tests: ``check`` raises with the trace and the replay
token, and the pytest plugin's ``--critsec-seed``. Real pytest runs
(``pytester``) of small test files that must fail, or must pass."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Generator

import pytest

from critsec.explorer._pytest import check

pytest_plugins = ["pytester"]


def _plugin_installed() -> bool:
    return any(
        entry.value == "critsec.explorer._pytest"
        for entry in importlib.metadata.entry_points(group="pytest11")
    )


#: Installed as an entry point, pytest loads the plugin by itself (and would
#: refuse it twice); else the inner runs name it.
PLUGIN = [] if _plugin_installed() else ["-p", "critsec.explorer._pytest"]

SCENARIO = """
from critsec.explorer._pytest import check

def setup():
    return {"x": 0}

def inc(state):
    value = state["x"]
    yield
    state["x"] = value + 1

def inc_atomically(state):
    yield
    state["x"] += 1

def holds(state):
    return state["x"] == 2
"""


def run_inner(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=SCENARIO + body)
    # A subprocess: the inner session's plugin and seed stay out of this one.
    return pytester.runpytest_subprocess(*PLUGIN, *args)


def test_a_broken_test_fails_with_the_trace_and_the_token(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
def test_counter():
    check(setup, [inc, inc], holds)
""",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(
        r"AssertionError: critsec: invariant failure after \d+ schedules? "
        r"\(strategy pct, seed 0, ",
        out,
    )
    result.stdout.fnmatch_lines(
        [
            "E *# | inc#1 * | inc#2 * | line",
            "E *switch*",
            "E *failed (invariant): the invariant does not hold: state is {'x': 1}",
            "E *replay: check(..., replay='cs1-*')",
        ]
    )
    # check() hides its own frame: the failure points at the test's line.
    assert "test_inner.py:19: AssertionError" in out
    assert "_pytest.py" not in out.replace("-p critsec.explorer._pytest", "")

    # The token in the message replays the same schedule: the same trace.
    token = re.search(r"replay='(cs1-[^']+)'", out)
    assert token is not None
    again = run_inner(
        pytester,
        f"""
def test_counter():
    check(setup, [inc, inc], holds, replay={token.group(1)!r})
""",
    )
    again.assert_outcomes(failed=1)
    table = [line for line in result.stdout.lines if line.startswith("E ") and " | " in line]
    replayed = [line for line in again.stdout.lines if line.startswith("E ") and " | " in line]
    assert table and replayed == table
    assert "invariant failure in the replayed schedule:" in again.stdout.str()


def test_a_correct_test_passes_and_can_require_a_proof(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
def test_counter():
    result = check(setup, [inc_atomically, inc_atomically], holds, strategy="dfs")
    assert result.exhausted and not result.failed
""",
    )
    result.assert_outcomes(passed=1)


def test_critsec_seed_option_changes_the_default_seed(pytester: pytest.Pytester) -> None:
    body = """
def test_counter():
    check(setup, [inc, inc], holds)
"""
    result = run_inner(pytester, body, "--critsec-seed", "12345")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["critsec: check() seed 12345", "*(strategy pct, seed 12345, *"])


def test_critsec_seed_option_rejects_nonsense(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*PLUGIN, "--critsec-seed", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--critsec-seed must be a non-negative integer or 'random', got 'soon'"]
    )


# -- check() called directly, as any runner would ----------------------------------------


def setup() -> dict[str, int]:
    return {"x": 0}


def inc(state: dict[str, int]) -> Generator[None, None, None]:
    value = state["x"]
    yield
    state["x"] = value + 1


def holds(state: dict[str, int]) -> bool:
    return state["x"] == 2


def test_check_raises_assertion_error_with_seed_and_token() -> None:
    with pytest.raises(AssertionError) as failure:
        check(setup, [inc, inc], holds, strategy="dfs")
    message = str(failure.value)
    assert message.startswith(
        "critsec: invariant failure after 2 schedules (strategy dfs, seed 0, "
    )
    assert re.search(r"replay: check\(\.\.\., replay='cs1-[\w-]+'\)$", message)


def test_check_with_replay_takes_no_search_options() -> None:
    with pytest.raises(TypeError, match=r"runs one schedule: it takes no seed, strategy$"):
        check(setup, [inc, inc], holds, replay="cs1-eNpjYGRkAgAACwAF", strategy="dfs", seed=1)
