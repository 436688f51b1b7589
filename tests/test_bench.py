"""``critsec bench``: its checks see a broken primitive, its rows and output.

No speed is asserted here (that is what the bench prints, not what a test
can judge on a shared machine): these tests check that every workload
refuses a wrong result, and that the command reports what it measured.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import Any

import pytest
from test_cli import critsec_cli, records

import critsec
from critsec import cli
from critsec.lab import _bench as bench
from critsec.lab import _work as work

# -- the workloads refuse wrong results -------------------------------------------------------


class DuplicatingQueue:
    """A queue that delivers every 7th item twice."""

    def __init__(self) -> None:
        self.inner: queue.Queue[Any] = queue.Queue()
        self.puts = 0

    def put(self, item: Any) -> None:
        self.puts += 1
        self.inner.put(item)
        if self.puts % 7 == 0:
            self.inner.put(item)

    def get(self) -> Any:
        return self.inner.get()


class DroppingCounter:
    """``add`` that forgets every 100th call; ``value`` as critsec's."""

    def __init__(self) -> None:
        self.value, self.calls = 0, 0
        self.lock = threading.Lock()

    def add(self, delta: int) -> int:
        with self.lock:
            self.calls += 1
            if self.calls % 100:
                self.value += delta
            return self.value


def test_a_queue_duplicating_items_is_a_wrong_result() -> None:
    with pytest.raises(work.WrongResult, match="items received"):
        work.queue_run(work.on_threads, DuplicatingQueue(), 70, 1)


def test_items_out_of_order_are_a_wrong_result() -> None:
    with pytest.raises(work.WrongResult, match="order of one producer's items"):
        work.check_items([[0, 1, 2, 3]], [[1, 0, 2, 3]])


def test_a_duplicated_item_is_a_wrong_result() -> None:
    with pytest.raises(work.WrongResult, match="items received"):
        work.check_items([[0, 1, 2]], [[0, 1], [1, 2]])


def test_a_counter_losing_updates_is_a_wrong_result() -> None:
    counter = DroppingCounter()
    with pytest.raises(work.WrongResult, match="counter"):
        work.updates_run(work.on_threads, work.adds, (counter,), 1000, 2)


@pytest.mark.parametrize("run_on", [work.on_threads, work.on_processes])
def test_a_task_that_fails_is_reported(run_on: Any) -> None:
    with pytest.raises(work.WrongResult, match="a task failed: ZeroDivisionError"):
        run_on([(divmod, (1, 0)), (divmod, (4, 2))])


def test_the_processes_workloads_check_real_primitives() -> None:
    rt = critsec.runtime("processes")
    seconds = work.queue_run(work.on_processes, rt.queue(4), 200, 2)
    assert seconds > 0
    counter = rt.counter(0)
    work.updates_run(work.on_processes, work.locked_updates, (rt.lock(), counter), 400, 2)
    assert counter.value == 400


def test_the_coroutines_and_asyncio_workloads_run_and_check() -> None:
    for lock in (False, True):
        for bare in (False, True):
            assert work.coroutines_run(100, lock=lock, bare=bare) > 0
    rt = critsec.runtime("asyncio")
    assert work.asyncio_lock_run(rt.lock, 100) > 0
    assert work.asyncio_queue_run(lambda: rt.queue(3), 100) > 0


# -- rows ---------------------------------------------------------------------------------------


def test_every_row_has_a_unique_name_and_the_issue_targets() -> None:
    names = [row.name for row in bench.ROWS]
    assert len(names) == len(set(names))
    targets = {row.name: row.target for row in bench.ROWS}
    assert targets["processes queue 1P1C ints"] == 0.67
    assert targets["processes counter.add"] == 0.33
    assert targets["asyncio lock"] == 1.3
    assert targets["coroutines with lock"] == 4.0
    assert {row.name for row in bench.ROWS if "sweep" in row.name} == {
        f"{rt} sweep {k} tasks" for rt in ("threads", "processes") for k in (1, 2, 4, 8)
    }


def test_only_selects_by_substring_or_wildcard() -> None:
    assert [r.name for r in bench.select_rows(["asyncio"])] == ["asyncio lock", "asyncio queue"]
    assert [r.name for r in bench.select_rows(["threads sweep [12]"])] == [
        "threads sweep 1 tasks",
        "threads sweep 2 tasks",
    ]
    assert bench.select_rows(None) == bench.ROWS


def test_a_missing_peer_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_fifo", None)  # import fails
    [row] = [r for r in bench.ROWS if r.needs]
    result = bench._measure(row.name, quick=True, repeats=1)
    assert result.skipped == "faster-fifo is not installed"
    assert result.to_json()["ratio"] is None and result.met is None


# -- the command ----------------------------------------------------------------------------


def test_bench_json_reports_each_row_measured_and_judged() -> None:
    done = critsec_cli(
        "bench", "--quick", "--repeats", "1", "--only", "threads*counter", "--json", timeout=120
    )
    assert done.returncode == 0, done.stderr
    [add, locked] = records(done.stdout)
    assert (add["name"], locked["name"]) == ("threads counter.add", "threads lock + counter.value")
    for row in (add, locked):
        assert row["critsec"] > 0 and row["baseline"] > 0 and row["repeats"] == 1
        assert row["ratio"] == pytest.approx(row["critsec"] / row["baseline"], rel=1e-3)
        assert row["met"] is (row["ratio"] <= row["target"])
        assert row["peak_rss_mib"] > 1
        assert row["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))


def test_bench_table_names_rows_anchors_and_targets() -> None:
    done = critsec_cli("bench", "--quick", "--repeats", "1", "--only", "asyncio lock", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "asyncio lock" in done.stdout and "asyncio.Lock" in done.stdout
    assert "<= 1.30" in done.stdout and "Targets met:" in done.stdout


def test_bench_refuses_a_pattern_matching_nothing() -> None:
    done = critsec_cli("bench", "--only", "no such row")
    assert done.returncode == 2
    assert done.stderr.startswith("critsec: error: no bench row matches 'no such row'")
    assert len(done.stderr.splitlines()) == 1


def test_bench_plot_without_matplotlib_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status = cli.main(["bench", "--only", "asyncio lock", "--plot", str(tmp_path / "b.png")])
    assert status == 2
    err = capsys.readouterr().err
    assert "pip install 'critsec[lab]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b.png").exists()  # checked before any work


def test_bench_plot_draws_the_measured_rows(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    done = critsec_cli(
        "bench", "--quick", "--repeats", "1", "--only", "threads sweep [12]",
        "--only", "threads counter.add", "--plot", str(png), "--json", timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert len(records(done.stdout)) == 3
    assert json.loads(done.stdout.splitlines()[0])["name"] == "threads counter.add"


def test_bench_memory_rows_report_a_long_and_a_short_pipeline() -> None:
    done = critsec_cli("bench", "--quick", "--only", "memory threads", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    [row] = records(done.stdout)
    assert row["name"] == "memory threads pipeline"
    assert (row["items"], row["fewer_items"]) == (100_000, 1_000)
    assert row["peak_mib"] > 1 and row["fewer_peak_mib"] > 1 and row["seconds"] > 0
    assert row["growth_mib"] == pytest.approx(row["peak_mib"] - row["fewer_peak_mib"], abs=0.01)


def test_long_pipeline_checks_count_and_sum_on_every_style() -> None:
    for runtime in ("threads", "coroutines", "asyncio"):
        assert work.long_pipeline(runtime, 500) > 0


def test_a_skipped_row_names_the_extra_it_needs_whole() -> None:
    from rich.console import Console

    from critsec.lab._render import render_memory

    row = bench.MemoryRow("memory redis pipeline", 100, skipped="pip install 'critsec[redis]'")
    console = Console(width=200, record=True)
    console.print(render_memory([row]))
    assert "pip install 'critsec[redis]'" in " ".join(console.export_text().split())
