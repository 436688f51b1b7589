"""The ``critsec`` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import critsec

COMMAND = [sys.executable, "-m", "critsec.cli"]


def critsec_cli(*args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


# -- counter ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(critsec.RUNTIMES))
def test_counter_with_lock_is_exact(name: str) -> None:
    done = critsec_cli(
        "counter", "--runtime", name, "--iterations", "500", "--trials", "2", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    trials = records(done.stdout)
    assert [t["trial"] for t in trials] == [1, 2]
    for t in trials:
        assert t["runtime"] == name and t["lock"] is True
        assert t["expected"] == t["observed"] == 9
        assert t["lost_updates"] == 0
        assert t["operations"] == 1_001
        assert t["seconds"] > 0 and t["ns_per_op"] > 0


def test_counter_without_lock_reports_net_lost_updates() -> None:
    done = critsec_cli("counter", "-r", "coroutines", "--no-lock", "-n", "300", "--json")
    assert done.returncode == 0, done.stderr
    [trial] = records(done.stdout)
    # Read, yield, write under round-robin: every increment is overwritten.
    assert (trial["lock"], trial["expected"], trial["observed"]) == (False, 9, 10 - 301)
    assert trial["lost_updates"] == 300


def test_counter_with_odd_task_count_has_one_more_adder() -> None:
    done = critsec_cli("counter", "-r", "threads", "--tasks", "3", "-n", "100", "--json")
    assert done.returncode == 0, done.stderr
    [trial] = records(done.stdout)
    assert trial["expected"] == trial["observed"] == 10 + 2 * 100 - 101
    assert trial["operations"] == 301


def test_counter_table_is_quiet_on_stderr_when_not_a_terminal() -> None:
    done = critsec_cli("counter", "-r", "threads", "-n", "1000", "-t", "3")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar into a pipe
    assert "lost updates" in done.stdout
    assert "exact in 3 of 3 trials" in done.stdout


# -- pipeline -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(critsec.RUNTIMES))
def test_pipeline_delivers_each_item_once(name: str) -> None:
    done = critsec_cli(
        "pipeline",
        "-r",
        name,
        "--producers",
        "3",
        "--consumers",
        "2",
        "--items",
        "600",
        "--maxsize",
        "4",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    [result] = records(done.stdout)
    assert result["runtime"] == name
    assert result["produced"] == result["consumed"] == 600
    assert result["lost"] == result["duplicated"] == 0
    assert 1 <= result["max_qsize"] <= 4
    assert result["items_per_s"] > 0


def test_pipeline_table() -> None:
    done = critsec_cli("pipeline", "-r", "threads", "-n", "50", "-m", "0")
    assert done.returncode == 0, done.stderr
    assert "unbounded" in done.stdout and "PASS" in done.stdout


# -- usage errors, help, Ctrl-C ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["counter", "-r", "fibers"], "--runtime must be one of threads, processes"),
        (["counter", "-r", "threads", "--tasks", "0"], "--tasks must be a positive integer, got 0"),
        (["counter", "-r", "threads", "-n", "-5"], "--iterations must be a positive integer"),
        (["counter", "-r", "threads", "--trials", "two"], "got 'two'"),
        (["counter", "-r", "threads", "-n", "1.5"], "got '1.5'"),
        (["counter"], "Missing option '--runtime'"),
        (["counter", "-r", "threads", "--turbo"], "No such option"),
        (["pipeline", "-r", "threads", "--maxsize", "-1"], "--maxsize must be a non-negative"),
        (["pipeline", "-r", "threads", "--items", "0"], "--items must be a positive integer"),
        (["pipeline", "-r", "threads", "--consumers", "x"], "--consumers must be a positive"),
        (["paint"], "No such command 'paint'"),
    ],
)
def test_usage_error_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = critsec_cli(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("critsec: error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["--help"], ["counter", "--help"], ["pipeline", "-h"], []])
def test_help(args: list[str]) -> None:
    done = critsec_cli(*args)
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: critsec")
    assert done.stderr == ""


def test_installed_script() -> None:
    script = Path(sys.executable).with_name("critsec")
    if not script.exists():
        pytest.skip("critsec is not installed as a script next to this Python")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"critsec, version {critsec.__version__}"


def test_ctrl_c_exits_130_with_one_line() -> None:
    # Many small trials, one JSON line each: the first line proves the command
    # is running before the signal is sent (no sleeping, no guessing).
    proc = subprocess.Popen(
        [*COMMAND, "counter", "-r", "threads", "-n", "1000", "-t", "1000000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert stderr.strip().splitlines() == ["critsec: interrupted"]


# -- demo ------------------------------------------------------------------------------------


def test_demo_quick_passes_every_step() -> None:
    done = critsec_cli("demo", "--quick", timeout=55)
    assert done.returncode == 0, done.stdout + done.stderr
    for number in range(1, 7):
        assert f"Step {number}." in done.stdout
    assert "FAIL" not in done.stdout
    assert done.stdout.count("Lesson:") == 6
    assert "6 of 6 steps behave as the lesson says." in done.stdout


def test_an_ascii_only_output_gets_ascii_not_a_crash() -> None:
    # PYTHONIOENCODING=ascii stands for any terminal or pipe that cannot
    # show the trace's arrows and marks: the demo used to end in
    # UnicodeEncodeError at its first trace.
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run(
        [*COMMAND, "demo", "--quick"], capture_output=True, timeout=120, check=False, env=env
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.isascii() and done.stderr.isascii()
    assert b"lesson_counter -> 9" in done.stdout  # the trace's arrow, in ASCII
    assert b"6 of 6 steps behave as the lesson says." in done.stdout
