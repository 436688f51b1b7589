"""Results as rich renderables, for people (machines get ``to_json()``)."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ._bench import BenchRow, MemoryRow
from ._counter import CounterResult
from ._demo import DemoStep
from ._faults import HolderKilledCounter, PipelineKills
from ._pipeline import PipelineResult

__all__ = [
    "render_bench",
    "render_counter",
    "render_demo_step",
    "render_holder_killed",
    "render_memory",
    "render_pipeline",
    "render_pipeline_kills",
    "verdict",
]


def verdict(ok: bool | None) -> Text:
    """PASS (green), FAIL (red) or "shown" for a run that is not judged."""
    if ok is None:
        return Text("shown", style="dim")
    return Text("PASS", style="bold green") if ok else Text("FAIL", style="bold red")


def render_counter(results: list[CounterResult]) -> RenderableType:
    """A table of counter trials (all with the same settings) and a summary."""
    first = results[0]
    lock = "with lock" if first.lock else "no lock"
    table = Table(
        title=f"counter: {first.runtime}, {lock}, {first.tasks} tasks x {first.iterations:,}",
        caption_justify="left",
    )
    for column in ("trial", "expected", "observed", "lost updates", "operations", "s", "ns/op"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            str(r.trial),
            f"{r.expected:,}",
            f"{r.observed:,}",
            f"{r.lost_updates:,}",
            f"{r.operations:,}",
            f"{r.seconds:.3f}",
            f"{r.ns_per_op:,.0f}",
        )
    exact = sum(r.exact for r in results)
    mean = sum(r.ns_per_op for r in results) / len(results)
    table.caption = (
        f"exact in {exact} of {len(results)} trials; "
        f"most updates lost: {max(r.lost_updates for r in results):,}; "
        f"mean {mean:,.0f} ns/op. lost updates = |expected - observed| (net)."
    )
    return table


def _two_columns(title: str, rows: list[tuple[str, str]], ok: bool) -> RenderableType:
    """A name-value table with a verdict at the bottom."""
    table = Table(title=title, show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, value)
    table.add_row("verdict", verdict(ok))
    return table


def render_pipeline(result: PipelineResult) -> RenderableType:
    """A two-column table of one pipeline run; for one side of a named
    pipeline, the rows that side can tell."""
    title = f"pipeline: {result.runtime}"
    if result.name is not None:
        title += f", {escape(repr(result.name))}"  # the user's name, "[...]" and all
    tasks = {
        "both": ("producers / consumers", f"{result.producers} / {result.consumers}"),
        "producer": ("producers", f"{result.producers}"),
        "consumer": ("consumers", f"{result.consumers}"),
    }[result.role]
    high = result.max_qsize
    bound = None if high is None else f"{high} / {result.maxsize or 'unbounded'}"
    rows = [
        ("role", None if result.role == "both" else f"{result.role} side"),
        tasks,
        ("items produced", f"{result.produced:,}"),
        ("items consumed", _count(result.consumed)),
        ("lost", _count(result.lost)),
        ("duplicated", _count(result.duplicated)),
        ("max qsize / maxsize", bound),
        ("seconds", f"{result.seconds:.3f}"),
        ("items per second", f"{result.items_per_s:,.0f}"),
    ]
    shown = [(name, value) for name, value in rows if value is not None]
    return _two_columns(title, shown, result.ok)


def _count(number: int | None) -> str | None:
    """A count for a table; None, what this side cannot tell, stays None."""
    return None if number is None else f"{number:,}"


def render_holder_killed(results: list[HolderKilledCounter]) -> RenderableType:
    """A table of locked-counter trials in which a holder was killed."""
    first = results[0]
    table = Table(
        title=f"counter: processes, with lock, {first.tasks} tasks x {first.iterations:,}, "
        "task 0 killed inside its critical section",
        caption_justify="left",
    )
    for column in ("trial", "killed at update", "expected", "observed", "next owner told", "ms"):
        table.add_column(column, justify="right")
    for trial, r in enumerate(results, 1):
        table.add_row(
            str(trial),
            f"{r.killed_at:,}",
            f"{r.expected:,}",
            f"{r.observed:,}",
            "yes" if r.told else "no",
            "" if r.wait_ms is None else f"{r.wait_ms:.2f}",
            end_section=False,
        )
    table.caption = (
        "expected = 10 + every update that was made (the killed task's update under way "
        "was read, not written); ms: from the death to the next owner holding the lock "
        "(a surviving task, or this process if they had all finished). "
        f"ok in {sum(r.ok for r in results)} of {len(results)} trials."
    )
    return table


def render_pipeline_kills(result: PipelineKills) -> RenderableType:
    """A two-column table of a pipeline run whose consumers were killed."""
    rows = [
        ("producers / consumers", f"{result.producers} / {result.consumers}"),
        ("consumers killed (and replaced)", f"{result.killed}"),
        ("items", f"{result.items:,}"),
        ("processed", f"{result.consumed:,}"),
        ("lost", f"{result.lost:,}"),
        ("duplicated", f"{result.duplicated:,}"),
        ("redelivered", f"{result.redelivered:,}"),
        ("seconds", f"{result.seconds:.3f}"),
    ]
    return _two_columns(f"pipeline: processes, {result.delivery}", rows, result.ok)


def render_demo_step(step: DemoStep) -> RenderableType:
    """A demo step: the lesson's claim, each run, the verdict and why."""
    parts: list[RenderableType] = [
        Text(f"Step {step.number}. {step.title}", style="bold"),
        Text(f"Lesson: {step.claim}"),
        Text(f"Ran:    {step.ran}"),
    ]
    if step.checks:
        table = Table(box=None, padding=(0, 1), pad_edge=True)
        for column, justify in (
            ("run", "left"),
            ("expected", "right"),
            ("observed", "right"),
            ("ns/op", "right"),
            ("", "left"),
        ):
            table.add_column(column, justify=justify, no_wrap=column == "run")  # type: ignore[arg-type]
        for check in step.checks:
            ns = "" if check.ns_per_op is None else f"{check.ns_per_op:,.0f}"
            table.add_row(check.label, check.expected, check.observed, ns, verdict(check.ok))
        parts.append(table)
    parts.append(Text.assemble(verdict(step.passed), "  ", step.explanation))
    parts.append(Text(""))
    return Group(*parts)


def render_bench(rows: list[BenchRow], machine: dict[str, object]) -> RenderableType:
    """The bench's table: per operation, critsec against its anchor."""
    table = Table(
        title=f"critsec bench: Python {machine['python']}, {machine['cpus']} CPUs, "
        f"{machine['system']}",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("work", no_wrap=True)
    table.add_column("against", no_wrap=True)
    for column in ("critsec", "anchor", "ratio", "target", "MiB"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        if row.skipped:
            table.add_row(row.name, row.anchor, *["-"] * 4, style="dim")
            continue
        target = "" if row.target is None else f"<= {row.target:.2f} "
        table.add_row(
            row.name,
            row.anchor,
            f"{row.per_op_us(row.critsec):.3f}",
            f"{row.per_op_us(row.baseline):.3f}",
            f"{row.ratio:.2f}",
            Text.assemble(target, verdict(row.met) if row.met is not None else ""),
            f"{row.peak_rss_mib:.0f}",
        )
    judged = [row for row in rows if row.met is not None]
    table.caption = (
        "critsec, anchor: microseconds per operation, medians of "
        f"{max((r.repeats for r in rows), default=0)} interleaved repeats; ratio = critsec / "
        "anchor (below 1: critsec is faster). MiB: the row's peak RSS (its process or a "
        f"task's). mp: multiprocessing. Targets met: {sum(bool(r.met) for r in judged)} "
        f"of {len(judged)}."
        + "".join(f" Skipped: {r.name} ({escape(r.skipped)})." for r in rows if r.skipped)
    )
    return table


def render_memory(rows: list[MemoryRow]) -> RenderableType:
    """Peak RSS of long pipelines against 100 times shorter ones."""
    table = Table(
        title="memory: a pipeline of 2 producers and 2 consumers, queue of 10",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("work", no_wrap=True)
    for column in ("items", "peak MiB", "items", "peak MiB", "growth MiB", "s"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        if row.skipped:
            table.add_row(row.name, *["-"] * 6, style="dim")
            continue
        table.add_row(
            row.name,
            f"{row.fewer_items:,}",
            f"{row.fewer_peak_mib:.1f}",
            f"{row.items:,}",
            f"{row.peak_mib:.1f}",
            f"{row.growth_mib:+.1f}",
            f"{row.seconds:.1f}",
        )
    table.caption = (
        "peak MiB: the run's process or its largest task process (the redis server's "
        "own memory is not counted; its items move 100 at a time). A bounded queue "
        "keeps the peak flat: growth near 0."
        # escape(): a reason may name an extra, 'critsec[redis]', which is markup
        + "".join(f" Skipped: {r.name} ({escape(r.skipped)})." for r in rows if r.skipped)
    )
    return table
