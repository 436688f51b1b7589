"""``critsec explore``, run as a real subprocess on scenarios written to a
temporary directory: the trace and exit 1 for a broken scenario, exit 0
for a correct one, replay, JSON, and one-line usage errors (exit 2).

Generator tasks suffice here: the command does not care which driver runs
a scenario, and generators switch only where the scenario says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCENARIOS = """
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

lost_update = (setup, [inc, inc], holds)

def correct():
    return {"setup": setup, "tasks": [inc_atomically, inc_atomically], "invariant": holds}

def locked_setup():
    import threading
    return {"x": 0, "lock": threading.Lock()}

def locked_inc(state):
    for _ in range(2):
        with state["lock"]:
            state["x"] += 1

locked = (locked_setup, [locked_inc, locked_inc], lambda state: state["x"] == 4)

class AsAClass:
    setup = staticmethod(setup)
    tasks = [inc, inc]
    invariant = staticmethod(holds)

def plain(state):
    pass

async def coroutine(state):
    pass

mixed = (setup, [plain, coroutine], holds)
no_tasks = (setup, [], holds)
not_callable = (setup, [inc], 42)
number = 7

def wants_arguments(n):
    return lost_update

def no_state():
    raise OSError("no state today")

broken_setup = (no_state, [inc], holds)
"""


#: The lesson's code, as threads: a global counter, no lock.
LESSON = """
counter = 10

def setup():
    global counter
    counter = 10
    return 2

def task_1(n):
    global counter
    for _ in range(n):
        counter += 1

def task_2(n):
    global counter
    for _ in range(n + 1):
        counter -= 1

def holds(n):
    return counter == 9

lesson = (setup, [task_1, task_2], holds)
"""


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    path = tmp_path / "scenarios.py"
    path.write_text(textwrap.dedent(SCENARIOS))
    return path


def critsec_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "critsec.cli", *args],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=cwd,
    )


def test_a_lost_update_is_found_shown_and_replayed(scenarios: Path) -> None:
    found = critsec_cli("explore", f"{scenarios}:lost_update", "--seed", "7")
    assert found.returncode == 1, found.stderr
    assert found.stderr == ""
    lines = found.stdout.splitlines()
    assert lines[0].startswith("invariant failure after ")
    assert "(strategy pct, seed 7, " in lines[0]
    assert lines[1].split() == ["#", "|", "inc#1", "|", "inc#2", "|", "line"]
    assert any(line.split("|")[0].strip() == "" and "switch" in line for line in lines)
    assert "scenarios.py:7" in found.stdout  # the write, with its line
    assert "failed (invariant): the invariant does not hold: state is {'x': 1}" in lines
    replay_line = lines[-1]
    assert replay_line.startswith(f"replay: critsec explore {scenarios}:lost_update --replay cs1-")
    token = replay_line.rsplit(" ", 1)[1]

    # The printed command gives the same trace, every time.
    again = critsec_cli("explore", f"{scenarios}:lost_update", "--replay", token)
    assert again.returncode == 1, again.stderr
    assert again.stdout.splitlines()[0] == "invariant failure in the replayed schedule:"
    trace = lines[1:-1]
    assert again.stdout.splitlines()[1:] == trace


def test_threads_trace_shows_values_and_the_conflict(tmp_path: Path) -> None:
    path = tmp_path / "lesson.py"
    path.write_text(LESSON.lstrip())  # "counter += 1" on line 11
    found = critsec_cli("explore", f"{path}:lesson", "--seed", "0")
    assert found.returncode == 1, found.stderr
    lines = found.stdout.splitlines()
    assert lines[1].split() == ["#", "|", "task_1", "|", "task_2", "|", "line"]
    reads = [line for line in lines if "counter ➜" in line]
    writes = [line for line in lines if "counter =" in line]
    assert reads and writes
    assert "lesson.py:11  counter += 1" in found.stdout
    assert "lesson.py:16  counter -= 1" in found.stdout
    # The lost update is named, and its three accesses are marked in the table.
    sentence = next(line for line in lines if line.startswith("⚠1 "))
    assert sentence.startswith("⚠1 lost update on global counter: ")
    assert sum("⚠1" in line for line in lines if " | " in line) == 3

    # The JSON form says the same: the conflict names the steps it marks.
    data = json.loads(critsec_cli("explore", f"{path}:lesson", "--seed", "0", "--json").stdout)
    conflict = data["trace"]["conflicts"][0]
    assert (conflict["pattern"], conflict["location"]) == ("lost update", "global counter")
    steps = {step["step"]: step for step in data["trace"]["steps"]}
    first, middle, last = (steps[n] for n in conflict["steps"])
    assert (first["kind"], middle["kind"], last["kind"]) == ("read", "write", "write")
    assert first["task"] == last["task"] != middle["task"]
    assert int(last["value"]) == int(first["value"]) + (1 if first["task"] == 0 else -1)


def test_the_same_seed_gives_the_same_output(scenarios: Path) -> None:
    runs = [
        critsec_cli("explore", f"{scenarios}:lost_update", "--seed", "3", "--json")
        for _ in range(2)
    ]
    first, second = (json.loads(run.stdout) for run in runs)
    for data in (first, second):
        del data["seconds"]
    assert first == second


def test_dfs_proves_a_correct_scenario(scenarios: Path) -> None:
    done = critsec_cli("explore", f"{scenarios}:correct", "--strategy", "dfs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no failure in ")
    assert "(strategy dfs, seed " in done.stdout
    assert done.stdout.rstrip().endswith("exhausted: every schedule was tried, so this is a proof")


def test_no_reduction_makes_dfs_try_every_order(scenarios: Path) -> None:
    counts = []
    for flag in ("--reduction", "--no-reduction"):
        done = critsec_cli(
            "explore",
            f"{scenarios}:locked",
            "--strategy",
            "dfs",
            "--preemption-bound",
            "2",
            flag,
            "--json",
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["exhausted"]
        counts.append(result["schedules"])
    reduced, plain = counts
    assert reduced < plain


def test_a_schedule_budget_that_runs_out_is_not_a_proof(scenarios: Path) -> None:
    done = critsec_cli("explore", f"{scenarios}:correct", "-s", "random", "-n", "3", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no failure in 3 schedules (strategy random, seed 1, ")
    assert done.stdout.rstrip().endswith("not exhausted: more schedules might still find one")


def test_json_carries_the_trace_with_its_steps(scenarios: Path) -> None:
    done = critsec_cli("explore", f"{scenarios}:AsAClass", "-s", "dfs", "--json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert (data["failed"], data["kind"], data["strategy"]) == (True, "invariant", "dfs")
    assert data["schedule"].startswith("cs1-")
    assert data["trace"]["tasks"] == ["inc#1", "inc#2"]
    kinds = [step["kind"] for step in data["trace"]["steps"]]
    assert kinds.count("yield") == 2 and kinds.count("return") == 2
    assert any(step.get("switch") for step in data["trace"]["steps"])


def test_a_module_name_is_imported_from_the_current_directory(scenarios: Path) -> None:
    done = critsec_cli("explore", "scenarios:correct", "-s", "dfs", cwd=scenarios.parent)
    assert done.returncode == 0, done.stderr
    assert "exhausted" in done.stdout


def test_a_setup_that_raises_is_one_line_and_exit_1(scenarios: Path) -> None:
    done = critsec_cli("explore", f"{scenarios}:broken_setup")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "critsec: error: the scenario failed outside its tasks: OSError: no state today"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{file}"], "the scenario must be FILE_OR_MODULE:NAME, got"),
        (["{dir}/missing.py:x"], "no such file: "),
        (["no_such_module_here:x"], "no such module: no_such_module_here"),
        (["{file}:nothing"], "has no 'nothing'"),
        (["{file}:number"], "number is not a scenario: it must be a (setup, tasks, invariant)"),
        (["{file}:mixed"], "mixed: tasks of different kinds cannot run together"),
        (["{file}:no_tasks"], "no_tasks: tasks must be a non-empty list of functions"),
        (["{file}:not_callable"], "not_callable: setup and invariant must be callables"),
        (["{file}:wants_arguments"], "a scenario function takes no arguments"),
        (["{dir}/broken.py:x"], "cannot import "),
        (["{file}:lost_update", "-s", "bfs"], "--strategy must be one of random, pct, dfs"),
        (["{file}:lost_update", "-n", "0"], "--max-schedules must be a positive integer, got 0"),
        (["{file}:lost_update", "--seed", "x"], "--seed must be a non-negative integer"),
        (["{file}:lost_update", "--replay", "abc"], "--replay must be a token a failure printed"),
        (
            ["{file}:lost_update", "--replay", "cs1-eNpjYGRkAgAACwAF", "-n", "5"],
            "--replay runs one schedule: it takes no --max-schedules",
        ),
        # A well-formed token that does not fit: it runs a task 5 of 2.
        (["{file}:correct", "--replay", "cs1-eNpjZQQAAA0ABw"], "--replay: decision 1: "),
    ],
)
def test_usage_error_is_one_line_and_exit_2(scenarios: Path, args: list[str], message: str) -> None:
    (scenarios.parent / "broken.py").write_text("raise ValueError('at import')\n")
    args = [a.format(file=scenarios, dir=scenarios.parent) for a in args]
    done = critsec_cli("explore", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("critsec: error: ")
    assert message in lines[0]


def test_demo_step_1_explores_the_lessons_code() -> None:
    from critsec import lab

    step = lab.demo_steps(quick=True)[0].run()
    assert step.passed, step.explanation
    by_label = {check.label: check for check in step.checks}
    found = by_label["explorer: lesson's code, 2 updates each"]
    proved = by_label["explorer: with the lock, 2 updates each"]
    assert found.ok and proved.ok
    assert proved.observed.startswith("none in all ")
    assert "lost update on global lesson_counter: " in step.trace
    assert "| lesson_counter ➜ " in step.trace
    assert step.trace.splitlines()[-1].startswith("replay token: cs1-")
    assert step.to_json()["trace"] == step.trace


SPINNER = """
def setup():
    return {"go": False}

def waiter(state):
    while not state["go"]:  # spins: nothing ever sets it
        pass

def idle(state):
    pass

scenario = (setup, [waiter, idle], lambda state: True)
"""


def test_max_steps_is_an_option_and_the_limit_names_it(tmp_path: Path) -> None:
    (tmp_path / "spinner.py").write_text(SPINNER)
    done = critsec_cli("explore", "spinner.py:scenario", "--max-steps", "300", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("critsec: error: one schedule exceeded 300 steps")
    assert "--max-steps" in done.stderr and len(done.stderr.splitlines()) == 1
    refused = critsec_cli("explore", "spinner.py:scenario", "--max-steps", "0", cwd=tmp_path)
    assert refused.returncode == 2 and "--max-steps" in refused.stderr
