"""The explorer's settings: defaults, ``CRITSEC_*`` environment overrides,
explicit arguments winning, and the same names on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_explore_cli import critsec_cli  # the explorer CLI tests' runner

from critsec.explorer import Settings, explore

ALL_SET = {
    "CRITSEC_STRATEGY": "dfs",
    "CRITSEC_MAX_SCHEDULES": "20000",
    "CRITSEC_MAX_STEPS": "500",
    "CRITSEC_TIMEOUT": "2.5",
    "CRITSEC_PREEMPTION_BOUND": "2",
    "CRITSEC_DEPTH": "3,4",
    "CRITSEC_GRANULARITY": "line",
}


def test_the_defaults_and_every_variable() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings() == Settings("pct", 1000, 100_000, None, None, (3, 4, 5), "opcode")
    assert Settings.from_env(ALL_SET) == Settings("dfs", 20000, 500, 2.5, 2, (3, 4), "line")
    assert Settings.from_env({"CRITSEC_DEPTH": "2", "CRITSEC_PREEMPTION_BOUND": "none"}) == (
        Settings(depth=2)
    )
    assert Settings.from_env({"CRITSEC_MAX_STEPS": "  "}) == Settings()  # blank: not set


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CRITSEC_STRATEGY", "bfs"),
        ("CRITSEC_MAX_SCHEDULES", "lots"),
        ("CRITSEC_MAX_SCHEDULES", "0"),
        ("CRITSEC_MAX_STEPS", "-1"),
        ("CRITSEC_TIMEOUT", "0"),
        ("CRITSEC_TIMEOUT", "inf"),
        ("CRITSEC_PREEMPTION_BOUND", "-1"),
        ("CRITSEC_DEPTH", "3,0"),
        ("CRITSEC_GRANULARITY", "word"),
    ],
)
def test_a_bad_variable_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{variable}='{value}' is not a valid "):
        Settings.from_env({variable: value})


def correct_setup() -> dict[str, int]:
    return {"n": 0}


def read_only(state: dict[str, int]) -> None:
    assert state["n"] == 0


def test_explore_takes_its_settings_from_the_environment_unless_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRITSEC_MAX_SCHEDULES", "3")
    tasks = [read_only, read_only]
    assert explore(correct_setup, tasks, lambda s: True, seed=1).schedules == 3
    assert explore(correct_setup, tasks, lambda s: True, seed=1, max_schedules=5).schedules == 5
    monkeypatch.setenv("CRITSEC_STRATEGY", "dfs")
    monkeypatch.setenv("CRITSEC_MAX_SCHEDULES", "1000")
    result = explore(correct_setup, tasks, lambda s: True, seed=1)
    assert result.strategy == "dfs" and result.exhausted


SCENARIO = """
def setup():
    return {"n": 0}
def look(state):
    assert state["n"] == 0
scenario = (setup, [look, look], lambda state: True)
"""


def test_the_command_line_has_the_same_names_and_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "look.py").write_text(SCENARIO)
    done = critsec_cli("explore", "look.py:scenario", "--max-schedules", "4", cwd=tmp_path)
    assert done.returncode == 0 and "no failure in 4 schedules" in done.stdout
    monkeypatch.setenv("CRITSEC_MAX_SCHEDULES", "2")
    done = critsec_cli("explore", "look.py:scenario", "--seed", "1", cwd=tmp_path)
    assert done.returncode == 0 and "no failure in 2 schedules" in done.stdout
    done = critsec_cli(
        "explore", "look.py:scenario", "-s", "dfs", "--preemption-bound", "0", cwd=tmp_path
    )
    assert done.returncode == 0 and "exhausted" in done.stdout


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        ((), {"CRITSEC_MAX_SCHEDULES": "lots"}, "CRITSEC_MAX_SCHEDULES='lots' is not a valid"),
        (("--preemption-bound", "1"), {}, "--preemption-bound applies to --strategy dfs only"),
        (("--timeout", "0"), {}, "--timeout"),
    ],
)
def test_bad_settings_on_the_command_line_are_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    error: str,
) -> None:
    (tmp_path / "look.py").write_text(SCENARIO)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = critsec_cli("explore", "look.py:scenario", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert error in done.stderr and len(done.stderr.splitlines()) == 1
