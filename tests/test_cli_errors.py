"""The ``critsec`` command where it goes wrong, and on a terminal.

Most cases call ``critsec.cli.main(argv)`` -- the command's own entry
point, which never raises and returns the exit status -- in this process,
on scenarios written to a temporary directory; the scenarios' tasks are
threads, which run a deterministic schedule. The progress bar needs a real
terminal: that case runs the installed ``critsec`` script in a subprocess
on a pseudo-terminal.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from terminal import run_on_terminal

from critsec.cli import main
from critsec.explorer._scheduler import encode_schedule

SCENARIOS = """
def setup():
    return {"x": 0}

def bump(state):
    state["x"] += 1

def holds(state):
    return state["x"] == 2

racy = (setup, [bump, bump], holds)

def failing():
    raise OSError("no scenario today")

def interrupted_setup():
    raise KeyboardInterrupt

interrupted = (interrupted_setup, [bump], holds)

# A task that does its steps only on every other schedule: replaying a
# prefix, dfs meets a different set of runnable tasks, and says so instead
# of going on as if it were the same program.
runs = 0

def counting_setup():
    global runs
    runs += 1
    return {"x": 0}

def unsteady(state):
    for _ in range(runs % 2 * 3):
        state["x"] += 1

def steady(state):
    for _ in range(3):
        state["x"] += 1

nondeterministic = (counting_setup, [unsteady, steady, steady], lambda state: True)
"""


@pytest.fixture
def scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli_scenarios.py"
    path.write_text(textwrap.dedent(SCENARIOS))
    # The command puts the scenario's directory first on sys.path; undo it.
    monkeypatch.setattr(sys, "path", list(sys.path))
    return path


#: How usage errors end: a pointer to the command's help.
HELP = "; see 'critsec explore --help'"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def test_a_file_that_is_not_python_cannot_be_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("setup = 1\n")
    status, out, err = run(capsys, "explore", f"{notes}:setup")
    assert (status, out) == (2, "")
    assert err == [f"critsec: error: cannot load {notes} as Python{HELP}"]


def test_a_module_whose_own_import_fails_names_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "needs_more.py"
    broken.write_text("import no_such_dependency_of_the_scenario\n")
    status, out, err = run(capsys, "explore", f"{broken}:scenario")
    assert (status, out) == (2, "")
    assert err == [
        f"critsec: error: cannot import {broken}: ModuleNotFoundError: "
        f"No module named 'no_such_dependency_of_the_scenario'{HELP}"
    ]


def test_a_scenario_function_that_raises_is_a_usage_error(
    scenarios: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "explore", f"{scenarios}:failing")
    assert (status, out) == (2, "")
    assert err == [f"critsec: error: failing() failed: OSError: no scenario today{HELP}"]


def test_ctrl_c_during_a_scenario_exits_130(
    scenarios: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "explore", f"{scenarios}:interrupted")
    # click ends the line the ^C was echoed on, then the command says why it stopped.
    assert (status, out, err) == (130, "", ["", "critsec: interrupted"])


def test_a_replay_token_that_does_not_fit_is_a_usage_error(
    scenarios: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first decision runs task 5 of 2.
    status, out, err = run(capsys, "explore", f"{scenarios}:racy", "--replay", encode_schedule([5]))
    assert (status, out) == (2, "")
    assert len(err) == 1 and err[0].startswith("critsec: error: --replay: decision 1: ")


def test_a_found_failure_replays_from_its_printed_token(
    scenarios: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "explore", f"{scenarios}:racy", "-s", "dfs")
    assert (status, err) == (1, [])
    assert "lost update on dict['x']" in out
    command = out.splitlines()[-1]
    assert command.startswith("replay: critsec explore ")
    token = command.split("--replay ")[1]
    status, again, err = run(capsys, "explore", f"{scenarios}:racy", "--replay", token)
    assert (status, err) == (1, [])
    # The same schedule, the same trace: only the heading differs, and a
    # replay prints no token to replay it again.
    assert again.splitlines()[0] == "invariant failure in the replayed schedule:"
    assert again.splitlines()[1:] == out.splitlines()[1:-1]


def test_dfs_on_a_program_that_changes_between_runs_is_an_error_not_a_pass(
    scenarios: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "explore", f"{scenarios}:nondeterministic", "-s", "dfs")
    assert (status, out) == (1, "")
    assert err == [
        "critsec: error: the program is not deterministic: the same schedule prefix reached "
        "a different set of runnable tasks ((0, 1, 2) then (1, 2)); dfs needs tasks whose "
        "only nondeterminism is the schedule"
    ]


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys)
    assert (status, err) == (0, [])
    assert out.startswith("Usage: critsec [OPTIONS] [COMMAND] [ARGS]...")
    for command in ("counter", "pipeline", "demo", "explore"):
        assert command in out


def test_progress_is_drawn_on_a_terminal_and_gone_before_the_table() -> None:
    script = Path(sys.executable).with_name("critsec")
    screen = run_on_terminal(
        [str(script), "counter", "-r", "threads", "-n", "200", "-t", "3"], timeout=50
    )
    for trial in (1, 2, 3):
        assert f"trial {trial}/3: threads, lock" in screen
    assert "exact in 3 of 3 trials" in screen
    # The bar is drawn before the table, never after it.
    assert screen.rindex("trial 3/3") < screen.index("exact in 3 of 3 trials")
