"""The lab's fault experiments: real processes killed with SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import critsec
from critsec import lab


def critsec_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "critsec.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_dead_holders_lock_is_handed_on_where_multiprocessing_stays_stuck(
    start_method: str,
) -> None:
    rt = critsec.runtime("processes", start_method=start_method)
    ours = lab.holder_dies(rt, lock="critsec", patience=10)
    assert ours.acquired and ours.told and ours.wait_ms is not None
    stdlib = lab.holder_dies(rt, lock="multiprocessing", patience=0.2)
    assert not stdlib.acquired and not stdlib.told and stdlib.wait_ms is None


def test_the_locked_counter_stays_exact_when_a_holder_dies() -> None:
    result = lab.counter_with_dying_holder(tasks=3, iterations=2000, seed=4)
    assert result.ok, result
    assert result.killed_at == lab.counter_with_dying_holder(iterations=2000, seed=4).killed_at
    assert result.to_json()["exact"] is True


@pytest.mark.parametrize("delivery", ["at-least-once", "at-most-once"])
def test_a_pipeline_whose_consumers_are_killed(delivery: str) -> None:
    result = lab.pipeline_with_kills(items=1500, kills=3, delivery=delivery, seed=2)
    assert result.killed == 3
    assert result.ok, result
    if delivery == "at-least-once":
        assert result.lost == 0 and result.consumed >= 1500
    else:
        assert result.duplicated == 0 and result.consumed == 1500 - result.lost


def test_fault_experiments_refuse_other_runtimes() -> None:
    with pytest.raises(ValueError, match="only a process can die alone"):
        lab.holder_dies("threads")


def test_cli_kill_options() -> None:
    done = critsec_cli(
        "pipeline", "-r", "processes", "-n", "1000", "--kill", "2", "--seed", "1",
        "--delivery", "at-least-once", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["lost"] == 0 and record["killed"] == 2 and record["delivery"] == "at-least-once"
    done = critsec_cli("counter", "-r", "processes", "--kill-holder", "-n", "3000", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["exact"] and record["told"]
    for args in (
        ["pipeline", "-r", "threads", "--kill", "1"],
        ["counter", "-r", "asyncio", "--kill-holder"],
    ):
        done = critsec_cli(*args)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1 and "only a process can die alone" in done.stderr
