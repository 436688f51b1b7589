"""The README tells the truth: its samples are run, and must still print
what it shows (timings aside), and its Python examples run as written."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Fields of the lab's JSON that a run decides (the race, the clock); the
#: others must be what the README shows.
VARYING = {"observed", "lost_updates", "seconds", "ns_per_op", "items_per_s", "max_qsize"}
#: ... and where tasks are killed: how long a hand-over took, and what the
#: moment of a kill decides (was the consumer holding an item, had it noted
#: it?). What must not vary stays checked: at-least-once loses nothing.
KILLED = {"wait_ms", "consumed", "duplicated", "redelivered"}


def _varying(record: dict[str, object]) -> set[str]:
    if "killed" not in record and "killed_at" not in record:
        return VARYING
    lost = {"lost"} if record.get("delivery") == "at-most-once" else set()
    return VARYING | KILLED | lost


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.M | re.S)


def _samples() -> list[tuple[str, str]]:
    """(command, what the README says it prints) for every ``$ critsec ...``."""
    samples = []
    for block in _blocks("console"):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            samples.append((command, output))
    return samples


def _run(command: str) -> subprocess.CompletedProcess[str]:
    args = shlex.split(command)
    assert args[0] == "critsec", f"a README sample runs something else: {command}"
    return subprocess.run(
        [sys.executable, "-m", "critsec.cli", *args[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONIOENCODING": "utf-8", "PATH": "/usr/bin:/bin", "COLUMNS": "100"},
    )


def test_the_readme_has_samples() -> None:
    commands = [command.split()[:2] for command, _ in _samples()]
    assert ["critsec", "explore"] in commands and ["critsec", "counter"] in commands


@pytest.mark.parametrize(("command", "shown"), _samples(), ids=[c for c, _ in _samples()])
def test_a_sample_prints_what_the_readme_shows(command: str, shown: str) -> None:
    done = _run(command)
    if "--json" in command:
        assert done.returncode == 0, done.stderr
        got = [json.loads(line) for line in done.stdout.splitlines()]
        want = [json.loads(line) for line in shown.splitlines()]
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.keys() == w.keys()
            varying = _varying(w)
            assert {k: v for k, v in g.items() if k not in varying} == {
                k: v for k, v in w.items() if k not in varying
            }
        return

    # Text: the same, but for the seconds a search took.
    def mask(text: str) -> str:
        return re.sub(r"\d+\.\d+ s\)", "N s)", text)

    assert mask(done.stdout) == mask(shown), done.stderr


@pytest.mark.parametrize("number", range(len(_blocks("python"))))
def test_a_python_example_runs_as_written(number: int, tmp_path: Path) -> None:
    script = tmp_path / f"example_{number}.py"
    script.write_text(_blocks("python")[number], encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
