"""``critsec counter --plot`` and ``critsec pipeline --plot``: the charts
are drawn from the run's own ``--json`` records.

No pixels are compared: each PNG carries what was plotted -- read back
from the figure's bars and lines -- in a text chunk, and that must be the
run's JSON.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from test_cli import critsec_cli, records

import critsec
from critsec import cli
from critsec.lab import _sampling
from critsec.lab._plot import PLOTTED_KEY

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_text(path: Path) -> dict[str, str]:
    """The PNG's tEXt chunks (matplotlib writes its metadata so)."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    texts, at = {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, value = body.partition(b"\0")
            texts[key.decode("latin-1")] = zlib.decompress(value[1:]).decode("latin-1")
        at += 12 + length
    return texts


def plotted(path: Path) -> Any:
    assert path.stat().st_size > 10_000  # a chart, not an empty canvas
    return json.loads(png_text(path)[PLOTTED_KEY])


def test_counter_plot_draws_each_trials_lost_updates(tmp_path: Path) -> None:
    png = tmp_path / "counter.png"
    done = critsec_cli(
        "counter", "-r", "coroutines", "--no-lock", "-n", "300", "-t", "4", "--json",
        "--plot", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    trials = records(done.stdout)
    assert [sorted(t) for t in trials] == [sorted(trials[0])] * 4  # the records as before
    assert "qsize_samples" not in trials[0]
    drawn = plotted(png)
    assert drawn["trials"] == [1, 2, 3, 4]
    assert drawn["lost_updates"] == [t["lost_updates"] for t in trials] == [300] * 4
    # The histogram counts every trial once, in the bin of its loss.
    assert sum(drawn["counts"]) == len(trials)
    edges = drawn["bin_edges"]
    assert edges[0] <= 300 <= edges[-1]


def test_counter_plot_of_threads_matches_the_json(tmp_path: Path) -> None:
    png = tmp_path / "threads.png"
    done = critsec_cli(
        "counter", "-r", "threads", "--no-lock", "-n", "20000", "-t", "3", "--json",
        "--plot", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trials = records(done.stdout)
    drawn = plotted(png)
    assert drawn["lost_updates"] == [t["lost_updates"] for t in trials]
    assert sum(drawn["counts"]) == 3


@pytest.mark.parametrize("name", list(critsec.RUNTIMES))
def test_pipeline_plot_draws_the_sampled_queue_and_consumers(name: str, tmp_path: Path) -> None:
    png = tmp_path / "pipeline.png"
    done = critsec_cli(
        "pipeline", "-r", name, "-p", "2", "-c", "3", "-n", "3000", "-m", "5", "--json",
        "--plot", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [record] = records(done.stdout)
    samples = record["qsize_samples"]
    assert 1 <= len(samples) <= _sampling.MAX_SAMPLES + 1
    assert all(0 <= n <= 5 for _, n in samples)
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)
    assert samples[-1][1] == 0  # the run ends with the queue drained
    assert sum(record["taken_per_consumer"]) == record["consumed"] == 3000
    assert len(record["items_per_s_per_consumer"]) == 3
    drawn = plotted(png)
    assert drawn["seconds"] == [t for t, _ in samples]
    assert drawn["qsize"] == [n for _, n in samples]
    assert drawn["consumers"] == ["consumer-0", "consumer-1", "consumer-2"]
    assert drawn["items_per_s"] == record["items_per_s_per_consumer"]


def test_pipeline_json_without_plot_is_unchanged() -> None:
    done = critsec_cli("pipeline", "-r", "threads", "-n", "100", "--json")
    [record] = records(done.stdout)
    assert not {"qsize_samples", "taken_per_consumer", "items_per_s_per_consumer"} & set(record)


def test_samples_stay_bounded_and_spread(tmp_path: Path) -> None:
    q = critsec.runtime("threads").queue(0)
    samples = _sampling.Samples()
    for i in range(5 * _sampling.MAX_SAMPLES):
        if i % 3 == 0:
            q.put(i)
        samples.read(q)
    points = samples.points
    assert len(points) <= _sampling.MAX_SAMPLES
    assert points[0][1] == 1  # the first reading is kept
    assert points[-1][1] == q.qsize()  # and the latest
    assert samples.interval > _sampling.FIRST_INTERVAL  # thinned, so read less often
    assert [t for t, _ in points] == sorted(t for t, _ in points)


@pytest.mark.parametrize(
    "args",
    [
        ["counter", "-r", "threads", "-n", "10"],
        ["pipeline", "-r", "threads", "-n", "10"],
    ],
)
def test_plot_without_matplotlib_is_one_line_before_any_work(
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png = tmp_path / "p.png"
    assert cli.main([*args, "--plot", str(png)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing ran
    assert "pip install 'critsec[lab]'" in err and len(err.splitlines()) == 1
    assert not png.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["counter", "-r", "threads", "--plot", "no/such/dir/c.png"], "--plot: cannot write"),
        (["pipeline", "-r", "threads", "--plot", "."], "--plot: cannot write"),
        (["counter", "-r", "processes", "--kill-holder", "--plot", "c.png"], "--kill-holder"),
        (["pipeline", "-r", "processes", "--kill", "1", "--plot", "p.png"], "--plot draws"),
    ],
)
def test_plot_usage_errors_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = critsec_cli(*[str(tmp_path / a) if a.endswith(".png") else a for a in args])
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("critsec: error: ") and message in line


def test_plot_takes_the_format_its_suffix_names(tmp_path: Path) -> None:
    done = critsec_cli("counter", "-r", "threads", "-n", "10", "--plot", str(tmp_path / "c.txt"))
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"critsec: error: --plot: cannot draw {tmp_path / 'c.txt'}: ")
    assert "not 'txt'" in line
    svg, bare = tmp_path / "c.svg", tmp_path / "chart"
    for path in (svg, bare):
        done = critsec_cli("counter", "-r", "threads", "-n", "10", "--plot", str(path))
        assert done.returncode == 0, done.stderr
    assert "<svg" in svg.read_text(encoding="utf-8")
    assert bare.read_bytes()[:8] == PNG_MAGIC  # no suffix: PNG, by the name given
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.svg", "chart"]
