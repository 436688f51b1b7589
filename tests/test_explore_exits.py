"""The explorer never reports a pass it did not see: a task that would end
the process (``os._exit``, ``sys.exit``, a fatal signal to itself) is a
failure of kind "exception" naming the line; a scenario module that exits
or runs forever at import is a one-line usage error (exit 2).

Every kind of task is tried: threads, generators and asyncio each have a
driver of their own, and each once let one of these endings through.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

import critsec
from critsec.cli import main
from critsec.explorer import ProcessExit
from critsec.explorer._exits import ProcessExitsRefused

REAL_EXIT = os._exit

#: Signals the tests send that would really end the test process.
FATAL = {signal.SIGKILL, signal.SIGTERM}


@pytest.fixture
def nothing_really_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the explorer let a call through, it must fail the test, not end
    pytest (``os._exit(0)`` would even end it with status 0): the "real"
    functions the explorer saves and calls are these stand-ins."""

    def reached(*args: object) -> None:
        raise AssertionError(f"the real call was reached with {args}")

    def guarded(real: Callable[..., None]) -> Callable[..., None]:
        def call(target: int, signum: int) -> None:
            if signum in FATAL:
                reached(target, signum)
            real(target, signum)

        return call

    monkeypatch.setattr(os, "_exit", reached)
    monkeypatch.setattr(os, "abort", reached)
    monkeypatch.setattr(os, "kill", guarded(os.kill))
    monkeypatch.setattr(os, "killpg", guarded(os.killpg))
    monkeypatch.setattr(signal, "pthread_kill", guarded(signal.pthread_kill))
    real_raise = signal.raise_signal
    monkeypatch.setattr(
        signal,
        "raise_signal",
        lambda signum: reached(signum) if signum in FATAL else real_raise(signum),
    )


def setup() -> dict[str, int]:
    return {"n": 0}


def holds(state: dict[str, int]) -> bool:
    return True


def thread_task(end: Callable[[], object]) -> Callable[[dict[str, int]], None]:
    def ends(state: dict[str, int]) -> None:
        state["n"] += 1
        end()

    return ends


def generator_task(end: Callable[[], object]) -> Callable[[dict[str, int]], Generator[None]]:
    def ends(state: dict[str, int]) -> Generator[None]:
        yield
        end()

    return ends


def async_task(end: Callable[[], object]) -> Callable[[dict[str, int]], Any]:
    async def ends(state: dict[str, int]) -> None:
        end()

    return ends


def thread_bystander(state: dict[str, int]) -> None:
    state["n"] += 1


def generator_bystander(state: dict[str, int]) -> Generator[None]:
    yield


async def async_bystander(state: dict[str, int]) -> None:
    pass


KINDS = {
    "threads": (thread_task, thread_bystander),
    "generators": (generator_task, generator_bystander),
    "asyncio": (async_task, async_bystander),
}

ENDINGS: dict[str, tuple[Callable[[], object], str]] = {
    "os._exit": (lambda: os._exit(0), "os._exit(0)"),
    "sys.exit": (lambda: sys.exit(0), "SystemExit: 0"),
    "os.abort": (lambda: os.abort(), "os.abort()"),
    "kill": (lambda: os.kill(os.getpid(), signal.SIGKILL), "os.kill(os.getpid(), SIGKILL)"),
    "killpg": (lambda: os.killpg(0, signal.SIGTERM), "os.killpg(0, SIGTERM)"),
    "raise_signal": (lambda: signal.raise_signal(signal.SIGTERM), "raise_signal(SIGTERM)"),
    "pthread_kill": (
        lambda: signal.pthread_kill(threading.get_ident(), signal.SIGKILL),
        "pthread_kill(..., SIGKILL)",
    ),
}


@pytest.mark.usefixtures("nothing_really_ends")
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_task_that_would_end_the_process_fails_its_schedule(kind: str, ending: str) -> None:
    make, bystander = KINDS[kind]
    end, named = ENDINGS[ending]
    result = critsec.explore(setup, [make(end), bystander], holds, seed=1, max_schedules=3)
    assert result.failed and result.kind == "exception", result
    assert named in result.message
    assert "'ends'" in result.message or "ends" in result.trace
    # The line that did it is named, not the explorer's replacement function.
    assert "end()" in result.trace and "explorer/_exits.py" not in result.trace
    assert os._exit.__name__ == "reached"  # restored once the exploration is over


def test_signals_that_do_not_end_the_process_still_work() -> None:
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))

    def task(state: dict[str, int]) -> None:
        os.kill(os.getpid(), 0)  # "does it exist?": no signal at all
        signal.raise_signal(signal.SIGUSR1)  # handled: the process goes on
        os.kill(os.getpid(), signal.SIGCHLD)  # ignored by default
        state["n"] += 1

    try:
        result = critsec.explore(setup, [task], lambda s: s["n"] == 1, seed=1, max_schedules=1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert not result.failed, result
    assert received == [signal.SIGUSR1]


def _fork_and_exit(state: dict[str, int]) -> None:
    # A process forked by a task is not the explored program: its own
    # os._exit must end it, as multiprocessing's children do.
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(7)
        finally:  # refused: the child must end all the same, not run pytest on
            REAL_EXIT(9)
    state["n"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_child_process_and_other_threads_keep_the_real_calls() -> None:
    result = critsec.explore(setup, [_fork_and_exit], lambda s: s["n"] == 7, max_schedules=1)
    assert not result.failed, result
    seen = []
    with ProcessExitsRefused() as guard:
        other = threading.Thread(target=lambda: seen.append(guard._explored()))
        other.start()
        other.join()
        seen.append(guard._explored())
    assert seen == [False, True]


@pytest.mark.usefixtures("nothing_really_ends")
def test_setup_that_ends_the_process_is_an_error_from_explore() -> None:
    def ending_setup() -> dict[str, int]:
        os._exit(3)

    with pytest.raises(ProcessExit, match=r"os\._exit\(3\)"):
        critsec.explore(ending_setup, [thread_bystander], holds, max_schedules=1)


# -- the command line -------------------------------------------------------------

SCENARIO = """
import os

def setup():
    return {"n": 0}

def ends(state):
    os._exit(0)

def ends_in_setup():
    os._exit(0)

def holds(state):
    return True

scenario = (setup, [ends], holds)
in_setup = (ends_in_setup, [ends], holds)
"""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.usefixtures("nothing_really_ends")
def test_the_command_reports_a_task_that_ends_the_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ending.py").write_text(SCENARIO)
    status, out, _ = run_cli(capsys, "explore", f"{tmp_path}/ending.py:scenario", "--seed", "1")
    assert status == 1
    assert "failed (exception)" in out and "os._exit(0) would end" in out
    status, _, err = run_cli(capsys, "explore", f"{tmp_path}/ending.py:in_setup", "--seed", "1")
    assert status == 1
    assert err.splitlines() == [
        "critsec: error: the scenario failed outside its tasks: "
        "ProcessExit: os._exit(0) would end the explorer's process"
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "import sys\nsys.exit(0)\n",
            r"ends the process while being imported \(SystemExit: 0\)",
        ),
        (
            "import os\nos._exit(0)\n",
            r"ends the process while being imported \(os\._exit\(0\)\)",
        ),
        ("while True:\n    pass\n", r"took more than 0\.2 s: does it run forever at import\?"),
    ],
    ids=["sys.exit", "os._exit", "forever"],
)
@pytest.mark.usefixtures("nothing_really_ends")
def test_a_module_that_exits_or_never_ends_at_import_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str, message: str
) -> None:
    (tmp_path / "bad.py").write_text(textwrap.dedent(code))
    argv = ["explore", f"{tmp_path}/bad.py:scenario", "--import-timeout", "0.2"]
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("critsec: error: ")
    assert re.search(message, line), line


@pytest.mark.parametrize(("value", "complaint"), [("0", "a positive"), ("soon", "a number")])
def test_the_import_timeout_must_be_a_positive_number(
    capsys: pytest.CaptureFixture[str], value: str, complaint: str
) -> None:
    status, _, err = run_cli(capsys, "explore", "x.py:scenario", "--import-timeout", value)
    assert status == 2
    assert err.startswith(f"critsec: error: --import-timeout must be {complaint}")
