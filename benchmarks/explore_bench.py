"""Known-buggy and correct concurrent programs, side by side: critsec's
explorer, frontrun (a peer on PyPI), and plain stress testing.

    python benchmarks/explore_bench.py [--only NAME ...] [--tools ...]

For every program in ``benchmarks/programs`` and every tool this runs one
subprocess (so that a tool which hangs on a blocking primitive is seen as a
*stall*, killed at ``--time-limit``, instead of hanging the benchmark) and
prints one table: found or not, schedules (or runs) to the first failure,
and seconds -- measured inside the subprocess around the tool's call only,
so interpreter start-up and imports are not counted for anyone.

On a buggy program each explorer runs with ``--repeats`` seeds and the
cell shows how many found the bug and the median schedules and seconds;
a correct program gets one seed (the question there is only: any false
alarm?).

The tools, with the same budget and seeds for the explorers:

* ``critsec``: ``critsec.explorer.explore(..., strategy="pct")`` (``--strategy``
  picks another).
* ``frontrun``: ``frontrun.explore(..., strategy="random")``, frontrun's
  bytecode (random) exploration, run under its own ``frontrun`` wrapper
  command as its README says; ``reproduce_on_failure=0`` so it stops at the
  first failure like critsec does (its default replays the counterexample
  10 more times). asyncio programs use its asyncio support; it has none for
  generator tasks (n/a).
* ``frontrun-dpor``: ``frontrun.explore(...)`` with its default strategy,
  DPOR (default preemption bound 2), also under the wrapper: shown so the
  comparison is not only against frontrun's weaker mode.
* ``stress``: the program run for real ``--runs`` times (real threads; a
  real event loop; critsec's round-robin coroutines runtime for generator
  tasks), counting runs where the invariant broke, a task raised, or the run
  hung (hang limit ``--hang-limit`` seconds per run; a hung thread cannot be
  killed, so stress stops at the first hang).

This is a script, never a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import programs

HERE = Path(__file__).resolve()
TOOLS = ("critsec", "frontrun", "frontrun-dpor", "stress")
MARK = "BENCH-RESULT "  # prefixes the worker's one result line on stdout


@dataclass
class Cell:
    """What one tool did on one program."""

    status: str  # found | passed | inconclusive | n/a | stall | error
    kind: str | None = None  # invariant | exception | deadlock | hang
    schedules: int | None = None  # to the first failure, else how many were run
    seconds: float | None = None
    failures: int | None = None  # stress: runs that failed
    runs: int | None = None  # stress: runs done
    note: str = ""
    found_in: int | None = None  # explorers: seeds that found a failure ...
    repeats: int | None = None  # ... of this many seeds tried
    cold_seconds: float | None = None  # the first seed's run, the first in its process


# -- workers: one tool on one program, in a subprocess ---------------------------


def run_critsec(p: ModuleType, args: argparse.Namespace, seed: int, budget: float) -> Cell:
    from critsec.explorer import explore

    started = time.perf_counter()
    r = explore(
        p.setup,
        p.tasks,
        p.invariant,
        strategy=args.strategy,
        max_schedules=args.schedules,
        seed=seed,
        timeout=budget,
    )
    seconds = time.perf_counter() - started
    if r.failed:
        return Cell("found", r.kind, r.schedules, seconds, note=r.message[:200])
    return Cell("passed", None, r.schedules, seconds)


def _frontrun_kind(explanation: str) -> str:
    text = explanation.lower()
    if "deadlock" in text:
        return "deadlock"
    if "worker crash" in text:
        return "exception"
    return "invariant"


def run_frontrun(
    p: ModuleType, args: argparse.Namespace, seed: int, budget: float, strategy: str
) -> Cell:
    kind = programs.kind(p)
    if kind == "generator":
        return Cell("n/a", note="frontrun has no generator-task support")
    import frontrun  # type: ignore[import-not-found,import-untyped,unused-ignore]  # a [bench] extra

    options: dict[str, Any] = {"strategy": strategy, "total_timeout": budget}
    if strategy == "random":
        options.update(max_attempts=args.schedules, seed=seed)
    else:
        options.update(max_executions=args.schedules)
    if kind == "blocking":
        options["reproduce_on_failure"] = 0
    started = time.perf_counter()
    try:
        result = frontrun.explore(
            setup=p.setup, workers=list(p.tasks), invariant=p.invariant, **options
        )
        if kind == "async":
            result = asyncio.run(result)
    except Exception as exc:
        # frontrun's DPOR lets a task's exception propagate out of explore():
        # that is a found bug if the exception was raised in the program's
        # own code (the count of schedules run is then unknown).
        seconds = time.perf_counter() - started
        frames = traceback.extract_tb(exc.__traceback__)
        source = Path(str(p.__file__)).resolve()
        if any(Path(f.filename).resolve() == source for f in frames):
            return Cell(
                "found",
                "exception",
                None,
                seconds,
                note=f"raised out of frontrun.explore: {exc!r}"[:200],
            )
        raise
    seconds = time.perf_counter() - started
    explanation = result.explanation or ""
    if result.property_holds is False:
        return Cell(
            "found",
            _frontrun_kind(explanation),
            result.num_explored,
            seconds,
            note=explanation.strip().splitlines()[0][:200] if explanation.strip() else "",
        )
    if result.property_holds is None:
        reason = result.inconclusive_reason or explanation
        return Cell("inconclusive", None, result.num_explored, seconds, note=reason[:200])
    return Cell("passed", None, result.num_explored, seconds)


def _stress_threads(p: ModuleType, hang_limit: float) -> str | None:
    """One real run with real threads: how it failed, or None."""
    state = p.setup()
    errors: list[BaseException] = []

    def body(task: Callable[[Any], Any]) -> None:
        try:
            task(state)
        except BaseException as exc:  # reported as this run's failure
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(t,), daemon=True) for t in p.tasks]
    for t in threads:
        t.start()
    deadline = time.monotonic() + hang_limit
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        return "hang"
    if errors:
        return "exception"
    return None if p.invariant(state) else "invariant"


def _stress_asyncio(p: ModuleType, hang_limit: float) -> str | None:
    state = p.setup()

    async def main() -> list[Any]:
        work = asyncio.gather(*(t(state) for t in p.tasks), return_exceptions=True)
        return await asyncio.wait_for(work, hang_limit)

    try:
        outcomes = asyncio.run(main())
    except TimeoutError:
        return "hang"
    if any(isinstance(o, BaseException) for o in outcomes):
        return "exception"
    return None if p.invariant(state) else "invariant"


def _stress_generators(p: ModuleType, hang_limit: float) -> str | None:
    import critsec

    state = p.setup()
    runtime = critsec.runtime("coroutines")  # round-robin, as in the lesson
    try:
        runtime.run(*(functools.partial(t, state) for t in p.tasks), timeout=hang_limit)
    except critsec.DeadlockError:
        return "deadlock"
    except TimeoutError:
        return "hang"
    except critsec.TaskError:
        return "exception"
    return None if p.invariant(state) else "invariant"


def run_stress(p: ModuleType, args: argparse.Namespace) -> Cell:
    once = {
        "blocking": _stress_threads,
        "async": _stress_asyncio,
        "generator": _stress_generators,
    }[programs.kind(p)]
    failures = 0
    first: int | None = None
    kinds: set[str] = set()
    runs = 0
    started = time.perf_counter()
    for run in range(1, args.runs + 1):
        runs = run
        kind = once(p, args.hang_limit)
        if kind is not None:
            failures += 1
            kinds.add(kind)
            first = first or run
        if kind == "hang":
            # A stuck thread cannot be stopped, so later runs would not be
            # clean; and every further hang would cost the full hang limit.
            break
    seconds = time.perf_counter() - started
    status = "found" if failures else "passed"
    note = f"stopped at the first hang (run {runs})" if "hang" in kinds else ""
    return Cell(status, ",".join(sorted(kinds)) or None, first, seconds, failures, runs, note)


def repeated(once: Callable[[int, float], Cell], args: argparse.Namespace, bug: bool) -> Cell:
    """An explorer on a buggy program with ``--repeats`` seeds (seed, seed+1,
    ...): how many found the bug, and the median schedules and seconds over
    all of them (a seed that missed counts with what it spent). One
    schedule-count from one seed is too noisy to compare tools by. A correct
    program gets one seed: there the question is only "any false alarm?".
    The seeds share the time budget; repeating stops when it is spent."""
    deadline = time.perf_counter() + args.budget
    cells: list[Cell] = []
    for i in range(args.repeats if bug else 1):
        remaining = deadline - time.perf_counter()
        if cells and remaining <= 0:
            break
        gc.collect()  # so that no run pays for garbage left by the one before
        cells.append(once(args.seed + i, max(remaining, 0.001)))
        if cells[0].status == "n/a":
            return cells[0]
    found = [c for c in cells if c.status == "found"]
    unsure = [c for c in cells if c.status == "inconclusive"]
    first = (found or unsure or cells)[0]
    schedules = [c.schedules for c in cells if c.schedules is not None]
    return Cell(
        first.status,
        first.kind,
        statistics.median_low(schedules) if schedules else None,
        statistics.median(c.seconds or 0.0 for c in cells),
        note=first.note,
        found_in=len(found),
        repeats=len(cells),
        cold_seconds=cells[0].seconds,
    )


def worker(args: argparse.Namespace) -> None:
    p = programs.load(args.program)
    tool = args.worker
    bug = bool(p.BUG)
    if tool == "critsec":
        cell = repeated(functools.partial(run_critsec, p, args), args, bug)
    elif tool == "frontrun":
        cell = repeated(functools.partial(run_frontrun, p, args, strategy="random"), args, bug)
    elif tool == "frontrun-dpor":
        cell = repeated(functools.partial(run_frontrun, p, args, strategy="dpor"), args, bug)
    else:
        cell = run_stress(p, args)
    print(MARK + json.dumps(asdict(cell)), flush=True)
    # A stress run that hung leaves threads that can never finish: leave now.
    os._exit(0)


# -- the driver: every tool on every program ------------------------------------


def frontrun_command() -> list[str]:
    """frontrun's own wrapper command, from the environment running this."""
    beside = Path(sys.executable).parent / "frontrun"
    found = str(beside) if beside.exists() else shutil.which("frontrun")
    if found is None:
        raise SystemExit("frontrun is not installed: pip install frontrun (the [bench] extra)")
    return [found]


def measure(tool: str, name: str, args: argparse.Namespace) -> Cell:
    if tool.startswith("frontrun") and programs.kind(programs.load(name)) == "generator":
        return Cell("n/a", note="frontrun has no generator-task support")
    command = [
        sys.executable,
        str(HERE),
        "--worker",
        tool,
        "--program",
        name,
        "--schedules",
        str(args.schedules),
        "--strategy",
        args.strategy,
        "--runs",
        str(args.runs),
        "--seed",
        str(args.seed),
        "--repeats",
        str(args.repeats),
        "--hang-limit",
        str(args.hang_limit),
        # The tool's own budget ends its search before the hard limit, so a
        # slow search reads as "passed after N schedules", not as a stall.
        "--budget",
        str(args.time_limit * 0.8),
    ]
    if tool.startswith("frontrun"):
        command = frontrun_command() + command
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a stall can be killed with all it started
    )
    try:
        out, err = process.communicate(timeout=args.time_limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return Cell("stall", seconds=args.time_limit, note=f"killed after {args.time_limit} s")
    for line in out.splitlines():
        if line.startswith(MARK):
            return Cell(**json.loads(line[len(MARK) :]))
    tail = (err.strip().splitlines() or ["no output"])[-1]
    return Cell("error", note=f"exit {process.returncode}: {tail[:200]}")


def show(cell: Cell, tool: str) -> str:
    """One table cell: a mark, then schedules (runs) and seconds."""
    secs = "" if cell.seconds is None else f" · {cell.seconds:.3f} s"
    if cell.status in ("n/a", "error", "stall"):
        return cell.status + secs if cell.status == "stall" else cell.status
    if tool == "stress":
        first = f" (1st: run {cell.schedules})" if cell.schedules else ""
        return f"{cell.failures}/{cell.runs}{first}{secs}"
    mark = {"found": "✔", "passed": "pass", "inconclusive": "?"}[cell.status]
    kind = f" {cell.kind}" if cell.kind else ""
    seeds = f" {cell.found_in}/{cell.repeats}" if cell.repeats and cell.repeats > 1 else ""
    schedules = "?" if cell.schedules is None else cell.schedules
    return f"{mark}{kind}{seeds} · {schedules}{secs}"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summary(
    results: dict[str, dict[str, Cell]], tools: list[str], bugs: dict[str, bool]
) -> list[str]:
    lines = []
    buggy = [n for n in results if bugs[n]]
    correct = [n for n in results if not bugs[n]]
    for tool in tools:
        cells = {n: results[n][tool] for n in results}
        found = [n for n in buggy if cells[n].status == "found"]
        applicable = [n for n in buggy if cells[n].status != "n/a"]
        false_pos = [n for n in correct if cells[n].status == "found"]
        stalls = [n for n in results if cells[n].status == "stall"]
        errors = [n for n in results if cells[n].status == "error"]
        unsure = [n for n in results if cells[n].status == "inconclusive"]
        secs = median([cells[n].seconds or 0.0 for n in found])
        text = (
            f"- **{tool}**: found {len(found)}/{len(applicable)} bugs"
            f" (of {len(buggy)}; n/a {len(buggy) - len(applicable)}),"
            f" false positives {len(false_pos)}/{len(correct)}, stalls {len(stalls)},"
            f" errors {len(errors)}, inconclusive {len(unsure)}"
        )
        # stress seconds are for all its runs, not to the first failure
        if secs is not None and tool != "stress":
            text += f"; median time to first failure (warm) {secs:.4f} s"
        missed = [n for n in applicable if n not in found]
        for label, names in (
            ("missed", missed),
            ("false positives", false_pos),
            ("stalls", stalls),
            ("errors", errors),
            ("inconclusive", unsure),
        ):
            if names:
                text += f"; {label}: {', '.join(names)}"
        lines.append(text)
    for peer in ("frontrun", "frontrun-dpor"):
        if "critsec" not in tools or peer not in tools:
            continue
        both = [
            n
            for n in buggy
            if results[n]["critsec"].status == "found" and results[n][peer].status == "found"
        ]
        for label, field in (("warm", "seconds"), ("cold", "cold_seconds")):
            ours = median([getattr(results[n]["critsec"], field) or 0.0 for n in both])
            theirs = median([getattr(results[n][peer], field) or 0.0 for n in both])
            if ours is None or not theirs:
                continue
            lines.append(
                f"- {label} median time to first failure on the {len(both)} bugs both critsec "
                f"and {peer} found: critsec {ours:.4f} s, {peer} {theirs:.4f} s, "
                f"ratio critsec/{peer} = **{ours / theirs:.2f}** (below 1: critsec faster)"
            )
    if any("ratio critsec/" in line for line in lines):
        lines.append(
            "- warm: median over the seeds of one program (each tool already ran once in its "
            "process); cold: the first seed alone, which also pays each tool's one-time costs "
            "(lazy imports, first patching) -- what a single test would see"
        )
    return lines


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for package in ("critsec", "frontrun"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="program names (default: all)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated")
    parser.add_argument(
        "--schedules", type=int, default=1000, help="explorers' schedule budget (default 1000)"
    )
    parser.add_argument(
        "--strategy",
        default="pct",
        choices=("pct", "pos", "random", "dfs"),
        help="critsec's strategy (default pct, the explorer's default)",
    )
    parser.add_argument("--runs", type=int, default=300, help="stress runs (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=11,
        help="seeds per explorer on a buggy program; medians are reported (default 11)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        help="seconds per tool per program before it counts as a stall",
    )
    parser.add_argument(
        "--hang-limit",
        type=float,
        default=2.0,
        help="stress: seconds before one run counts as hung",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    # internal: run one tool on one program (in a subprocess)
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--program", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)}; valid: {', '.join(TOOLS)}")
    names = args.only or programs.names()
    bugs = {n: bool(programs.load(n).BUG) for n in names}
    results: dict[str, dict[str, Cell]] = {}
    for name in names:
        results[name] = {}
        for tool in tools:
            cell = measure(tool, name, args)
            results[name][tool] = cell
            print(
                f"  {name:28} {tool:14} {show(cell, tool)}  {cell.note[:90]}",
                file=sys.stderr,
                flush=True,
            )

    header = ["program", "bug", "kind"] + [
        f"stress ({args.runs} runs)" if t == "stress" else t for t in tools
    ]
    rows = [
        [f"`{n}`", "yes" if bugs[n] else "no", programs.LABELS[programs.kind(programs.load(n))]]
        + [show(results[n][t], t) for t in tools]
        for n in names
    ]
    print(f"\n### Explorer benchmark ({versions()})\n")
    print(
        f"critsec's strategy: {args.strategy}. "
        f"Budget: {args.schedules} schedules per explorer and seed; seeds {args.seed}.."
        f"{args.seed + args.repeats - 1} on buggy programs (medians shown), seed {args.seed} "
        f"on correct ones; stress: {args.runs} real runs; limit {args.time_limit:g} s "
        "per tool per program.\n"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        "\nCells: ✔ found (kind) seeds-that-found/seeds · median schedules to the first "
        "failure · median seconds; pass: no failure · schedules run · seconds; ? inconclusive; "
        "stress: failing runs/runs (first failing run) · seconds.\n"
    )
    print("\n".join(summary(results, tools, bugs)))
    if args.json:
        raw = {n: {t: asdict(c) for t, c in results[n].items()} for n in names}
        args.json.write_text(json.dumps({"versions": versions(), "results": raw}, indent=2))


if __name__ == "__main__":
    main()
