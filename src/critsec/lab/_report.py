"""``critsec report``: the lab's findings as one self-contained HTML file.

Nothing here is measured or judged anew: the page shows what the lab's own
code finds -- the demo's steps and verdicts (:func:`demo_steps`), lost
updates over trials (:func:`run_counter`, :func:`run_lesson_threads`), the
bench's rows (``_bench``) and the explorer's failing interleaving of the
lesson's race in the explorer's own player (``render_html``).

Self-contained: the style, the player's script and the charts (base64 PNG)
are inline, and the page's Content-Security-Policy lets nothing else load
or run. Every string an experiment made enters the page escaped. Verdicts
are words and marks, never colour alone; printed, the page shows every
section and the player every step.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import io
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import critsec

from . import _bench as bench
from . import _demo as demo
from ._counter import CounterResult, run_counter
from ._progress import Tracker

__all__ = ["BENCH_SECONDS", "Report", "ReportSizes", "build_report", "jobs"]


@dataclass(frozen=True)
class ReportSizes:
    """Updates per task and trials of the lost-update histograms."""

    threads: int
    processes: int
    coroutines: int
    trials: int


QUICK = ReportSizes(threads=100_000, processes=20_000, coroutines=5_000, trials=6)
FULL = ReportSizes(threads=1_000_000, processes=200_000, coroutines=50_000, trials=20)

#: About how long ``critsec bench --quick`` takes on two cores (measured
#: here: 41 s): too long for ``report --quick``, which leaves it out and says so.
BENCH_SECONDS = 40


@dataclass(frozen=True)
class Histogram:
    """One lost-update experiment, run ``trials`` times."""

    key: str
    title: str
    why: str
    run: Callable[[int], CounterResult]


def _histograms(sizes: ReportSizes) -> list[Histogram]:
    random_order = critsec.runtime("coroutines", order="random")
    return [
        Histogram(
            "threads-lesson",
            f"Threads, no lock, the lesson's code: global counter += 1 ({sizes.threads:,} each)",
            "CPython 3.10+ switches threads only at calls and backward jumps, never between the "
            "read and the write of counter += 1 on a global: expect nothing lost.",
            lambda trial: dataclasses.replace(demo.run_lesson_threads(sizes.threads), trial=trial),
        ),
        Histogram(
            "threads-value",
            f"Threads, no lock: counter.value += 1 ({sizes.threads:,} each)",
            "counter.value calls a property between the read and the write: a switch point, "
            "so updates are lost -- how many is luck.",
            lambda trial: run_counter("threads", lock=False, iterations=sizes.threads, trial=trial),
        ),
        Histogram(
            "processes",
            f"Processes, no lock ({sizes.processes:,} each)",
            "Processes run truly in parallel on shared memory: without the lock, updates are "
            "lost whenever the two overlap.",
            lambda trial: run_counter(
                "processes", lock=False, iterations=sizes.processes, trial=trial
            ),
        ),
        Histogram(
            "coroutines",
            f"Coroutines, a yield inside the critical section, no lock ({sizes.coroutines:,} "
            "each, random order)",
            "A task reads, yields, then writes what it read plus one: whatever the others wrote "
            "in between is overwritten. The scheduler picks the next task at random here.",
            lambda trial: run_counter(
                random_order, lock=False, iterations=sizes.coroutines, trial=trial
            ),
        ),
    ]


def jobs(quick: bool) -> int:
    """How many times :func:`build_report` calls its tracker."""
    sizes = QUICK if quick else FULL
    steps = len(demo.demo_steps(quick))
    rows = 0 if quick else len(bench.select_rows(None))
    return steps + len(_histograms(sizes)) * sizes.trials + 1 + rows


@dataclass(frozen=True)
class Report:
    """The page, and whether every demo step behaved as the lesson says."""

    html: str
    passed: int
    steps: int


# -- pieces of the page -------------------------------------------------------------

e = html.escape


def _png(draw: Callable[[io.BytesIO], object]) -> str:
    """``draw`` into an in-memory PNG, as a data: URL."""
    buffer = io.BytesIO()
    draw(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _charts() -> Any:
    """The plot module if matplotlib is there, else None."""
    from . import _plot as plot

    try:
        plot.require_matplotlib()
    except plot.MissingExtra:
        return None
    return plot


NO_CHARTS = (
    '<p class="note">No chart: charts need matplotlib (<code>pip install '
    "'critsec[lab]'</code>); the table has the numbers.</p>"
)


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return '<span class="shown">○ shown, not judged</span>'
    if ok:
        return '<span class="pass">✔ as the lesson says</span>'
    return '<span class="fail">✘ NOT as the lesson says</span>'


def _step(step: demo.DemoStep) -> str:
    rows = "".join(
        f"<tr><td>{e(c.label)}</td><td>{e(c.expected)}</td><td>{e(c.observed)}</td>"
        f'<td class="num">{"" if c.ns_per_op is None else f"{c.ns_per_op:,.0f}"}</td>'
        f"<td>{_verdict(c.ok)}</td></tr>"
        for c in step.checks
    )
    verdict = "PASS" if step.passed else "FAIL"
    trace = (
        f"<details><summary>The explorer's trace</summary><pre>{e(step.trace)}</pre></details>"
        if step.trace
        else ""
    )
    return (
        f'<section class="step" id="step-{step.number}" aria-labelledby="step-{step.number}-h">'
        f'<h3 id="step-{step.number}-h">Step {step.number}. {e(step.title)} — '
        f'<span class="{"pass" if step.passed else "fail"}">'
        f"{'✔' if step.passed else '✘'} {verdict}</span></h3>"
        f"<p><strong>Lesson:</strong> {e(step.claim)}</p>"
        f"<p><strong>Ran:</strong> {e(step.ran)}</p>"
        + (
            '<table><thead><tr><th scope="col">run</th><th scope="col">expected</th>'
            '<th scope="col">observed</th><th scope="col">ns/op</th><th scope="col">verdict</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>"
            if rows
            else ""
        )
        + f"<p><strong>Why:</strong> {e(step.explanation)}</p>{trace}</section>"
    )


def _histogram(h: Histogram, results: list[CounterResult], plot: Any) -> str:
    lost = [r.lost_updates for r in results]
    records = [r.to_json() for r in results]
    if plot is None:
        chart = NO_CHARTS
    else:
        url = _png(lambda out: plot.plot_counter(records, out, h.title))
        alt = f"Lost updates in each of {len(lost)} trials, and their histogram"
        chart = f'<img src="{url}" alt="{e(alt)}">'
    rows = "".join(
        f'<tr><td class="num">{r.trial}</td><td class="num">{r.expected:,}</td>'
        f'<td class="num">{r.observed:,}</td><td class="num">{r.lost_updates:,}</td>'
        f'<td class="num">{r.ns_per_op:,.0f}</td></tr>'
        for r in results
    )
    summary = (
        f"Lost updates in {sum(1 for n in lost if n)} of {len(lost)} trials; "
        f"median {statistics.median(lost):,.0f}, most {max(lost):,}."
    )
    return (
        f'<section class="histogram" id="lost-{h.key}" aria-labelledby="lost-{h.key}-h">'
        f'<h3 id="lost-{h.key}-h">{e(h.title)}</h3><p>{e(h.why)}</p>'
        f'<p class="summary"><strong>{e(summary)}</strong></p>{chart}'
        "<details><summary>Each trial</summary><table><thead><tr>"
        '<th scope="col">trial</th><th scope="col">expected</th><th scope="col">observed</th>'
        '<th scope="col">lost</th><th scope="col">ns/op</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details></section>"
    )


def _bench(rows: list[bench.BenchRow] | None, failure: str, plot: Any) -> str:
    head = '<section id="bench" aria-labelledby="bench-h"><h2 id="bench-h">Bench</h2>'
    if rows is None:
        return (
            head + '<p class="note">Left out with <code>--quick</code>: the bench\'s rows '
            f"(<code>critsec bench --quick</code>) take about {BENCH_SECONDS} s on two cores, "
            "more than the rest of the report. Run <code>critsec report</code> without "
            "<code>--quick</code> to include them.</p></section>"
        )
    if failure:
        head += f'<p class="fail">✘ A row did its work wrongly: {e(failure)}</p>'
    measured = [r for r in rows if not r.skipped]
    if plot is not None and measured:
        title = "critsec bench --quick: ratio critsec / anchor"
        url = _png(lambda out: plot.plot_bench(rows, out, title))
        head += f'<img src="{url}" alt="Each row\'s ratio critsec / anchor, and the sweep">'
    elif measured:
        head += NO_CHARTS
    body = "".join(
        f"<tr><td>{e(r.name)}</td><td>{e(r.anchor)}</td>"
        + (
            f'<td colspan="4">skipped: {e(r.skipped)}</td>'
            if r.skipped
            else f'<td class="num">{r.per_op_us(r.critsec):.3f}</td>'
            f'<td class="num">{r.per_op_us(r.baseline):.3f}</td>'
            f'<td class="num">{r.ratio:.2f}</td>'
            f"<td>{'' if r.target is None else f'≤ {r.target:.2f} '}"
            f"{'' if r.met is None else ('✔ met' if r.met else '✘ missed')}</td>"
        )
        + "</tr>"
        for r in rows
    )
    return (
        head + '<table><thead><tr><th scope="col">work</th><th scope="col">against</th>'
        '<th scope="col">critsec µs/op</th><th scope="col">anchor µs/op</th>'
        '<th scope="col">ratio</th><th scope="col">target</th></tr></thead>'
        f"<tbody>{body}</tbody></table><p>Medians of interleaved repeats "
        "(<code>critsec bench --quick</code>); ratio = critsec / anchor, below 1: critsec is "
        "faster. The memory rows are left out: <code>critsec bench</code> has them.</p>"
        "</section>"
    )


_CSS = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;background:#fff;
 max-width:70em;margin:0 auto;padding:1em}
a{color:#1a4fd0}
:focus-visible{outline:3px solid #1a4fd0;outline-offset:2px}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:2px solid #111}h3{margin-top:1.2em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #888;padding:.15em .5em;text-align:left;vertical-align:top}
thead th{background:#e8e8e8}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f4;padding:.5em}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.9em}
img{max-width:100%;height:auto;border:1px solid #ccc}
.pass{font-weight:bold}.fail{font-weight:bold;text-decoration:underline}
.shown{font-style:italic}
.note{border-left:4px solid #111;padding-left:.6em}
nav ol{columns:2}
.skip{position:absolute;left:-999em}.skip:focus{left:1em;top:1em;background:#fff;padding:.3em}
@media print{
 body{max-width:none;font-size:11pt}
 nav,.skip{display:none}
 a{color:inherit;text-decoration:none}
 section.step,section.histogram,table,img{break-inside:avoid}
 details::details-content{content-visibility:visible;display:block}
 h2{break-after:avoid}
}
"""


def _sections(sections: list[tuple[str, str]]) -> str:
    return "".join(f'<li><a href="#{key}">{e(title)}</a></li>' for key, title in sections)


NO_SCRIPT = "'none'"

# Printed, the folded parts (each trial, the traces) are shown: by the print
# style where the browser has ::details-content, by this script elsewhere.
_OPEN_TO_PRINT = (
    'window.addEventListener("beforeprint", function () {'
    ' document.querySelectorAll("details").forEach(function (d) { d.open = true; }); });'
)


def _page(body: str, title: str) -> str:
    # Only the player's scripts and ours may run: each is named by its hash.
    scripts = [*re.findall(r"<script>(.*?)</script>", body, flags=re.S), _OPEN_TO_PRINT]
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in scripts
    )
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src {hashes or NO_SCRIPT}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        '<a class="skip" href="#tour">Skip to the tour</a>\n'
        f"{body}<script>{_OPEN_TO_PRINT}</script>\n</body>\n</html>\n"
    )


# -- the whole report -------------------------------------------------------------------


def build_report(quick: bool, track: Tracker) -> Report:
    """Run everything the report shows and return the page. Calls ``track``
    :func:`jobs` times, once as each job starts. Main thread only (the
    demo's first step and the lesson's threads use a module global); blocks
    for seconds (``quick``) to minutes."""
    started = time.perf_counter()
    plot = _charts()
    sizes = QUICK if quick else FULL

    pending = demo.demo_steps(quick)
    steps = []
    for step in pending:
        track(f"step {step.number}/{len(pending)}: {step.title}")
        steps.append(step.run())

    histograms = []
    for h in _histograms(sizes):
        results = []
        for trial in range(1, sizes.trials + 1):
            track(f"lost updates, trial {trial}/{sizes.trials}: {h.key}")
            results.append(h.run(trial))
        histograms.append(_histogram(h, results, plot))

    track("the explorer: the lesson's race")
    found = demo.explore_lesson(demo.QUICK.explored if quick else demo.FULL.explored)
    from critsec.explorer._html import render_html

    player = render_html(found, replay_command=None, page=False)

    rows: list[bench.BenchRow] | None = None
    failure = ""
    if not quick:
        rows = []
        try:
            rows.extend(bench.run_bench(bench.select_rows(None), True, None, track))
        except bench.BenchFailed as error:
            failure = str(error)

    passed = sum(step.passed for step in steps)
    python = f"{platform.python_implementation()} {platform.python_version()}"
    machine = bench.machine()
    title = f"critsec report: {passed} of {len(steps)} steps behave as the lesson says"
    contents = [
        ("tour", "The lesson, step by step"),
        ("lost-updates", "Lost updates over trials"),
        ("bench", "Bench"),
        ("explorer", "The explorer: the lesson's race, step by step"),
    ]
    body = (
        f"<header><h1>{e(title)}</h1><p>{e(python)} on {e(str(machine['system']))}, "
        f"{e(str(machine['cpus']))} CPUs; made by <code>critsec report"
        f"{' --quick' if quick else ''}</code> on {e(time.strftime('%Y-%m-%d %H:%M %Z'))} "
        f"in {time.perf_counter() - started:,.0f} s.</p>"
        f'<nav aria-label="contents"><h2>Contents</h2><ol>{_sections(contents)}</ol></nav>'
        "</header><main>"
        '<section id="tour" aria-labelledby="tour-h"><h2 id="tour-h">The lesson, step by step'
        "</h2><p>Each claim of the lesson, run for real on this Python and judged "
        "(<code>critsec demo"
        + (" --quick" if quick else "")
        + "</code>).</p>"
        + "".join(_step(step) for step in steps)
        + "</section>"
        '<section id="lost-updates" aria-labelledby="lost-h"><h2 id="lost-h">Lost updates over '
        f"trials</h2><p>Two tasks, one adding 1 n times, one subtracting 1 n + 1 times, from "
        f"10: exact is 9. Each experiment ran {sizes.trials} times; lost = |9 - observed|, "
        "the net loss.</p>"
        + "".join(histograms)
        + "</section>"
        + _bench(rows, failure, plot)
        + '<section id="explorer" aria-labelledby="explorer-h"><h2 id="explorer-h">The '
        "explorer: the lesson's race, step by step</h2><p>The lesson's two functions "
        "(global counter += 1, no lock) run by the explorer, which switches between "
        "bytecodes, until a schedule loses an update. Step through it with the buttons, or "
        "focus a button and use ← → Home End and Space.</p>" + player + "</section></main>"
    )
    return Report(_page(body, title), passed, len(steps))
