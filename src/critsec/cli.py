"""The ``critsec`` command: the lesson's experiments from the shell.

A thin layer over :mod:`critsec.lab`: parse options, run, print. Results go
to stdout (a rich table, or one JSON object per line with ``--json``);
errors go to stderr as one line. Exit status: 0 when the run behaved as
critsec promises, 1 when a promise was broken (a locked counter that is not
exact, a pipeline that lost or duplicated an item, a demo step that failed,
a schedule ``explore`` found breaking the user's invariant) or a task
failed, 2 for bad usage, 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP
(each after stopping the tasks it started).
"""

from __future__ import annotations

import codecs
import importlib
import importlib.util
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from rich.console import Console

import critsec
from critsec import explorer, lab
from critsec._runtime import REDIS_SCHEMES
from critsec._task import common_kind
from critsec._watchdog import Overtime, Watchdog
from critsec.explorer._exits import ProcessExit, ProcessExitsRefused
from critsec.explorer._html import render_html
from critsec.explorer._scheduler import decode_schedule
from critsec.explorer._trace import summary
from critsec.lab import _bench as bench_rows
from critsec.lab import _plot as plot
from critsec.lab._progress import progress
from critsec.lab._render import (
    render_bench,
    render_counter,
    render_demo_step,
    render_holder_killed,
    render_memory,
    render_pipeline,
    render_pipeline_kills,
)

__all__ = ["main"]

PROG = "critsec"


def _count_option(minimum: int, kind: str) -> dict[str, Any]:
    """Keyword arguments for a ``click.option`` taking an integer >= ``minimum``;
    anything else gets a one-line complaint naming ``kind``."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | int | None) -> int | None:
        if value is None:  # an option left out that has no default
            return None
        try:
            number = int(value)
        except ValueError:
            raise click.BadParameter(f"must be {kind}, got {value!r}") from None
        if number < minimum:
            raise click.BadParameter(f"must be {kind}, got {number}")
        return number

    return {"type": str, "metavar": "N", "callback": convert}


POSITIVE = _count_option(1, "a positive integer")
NON_NEGATIVE = _count_option(0, "a non-negative integer")


def _runtime_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value in critsec.RUNTIMES:
        return value
    if not value.startswith(REDIS_SCHEMES):
        raise click.BadParameter(
            f"must be one of {', '.join(critsec.RUNTIMES)}, or a server URL "
            f"({', '.join(REDIS_SCHEMES)}), got {_shown(value)!r}"
        )
    # Checked now, as redis-py will read it (nothing is connected): the
    # runtime would find out at its first command, in a traceback.
    try:
        import redis
    except ImportError:
        return value  # critsec.runtime() says what to install
    try:
        redis.ConnectionPool.from_url(value).make_connection()
    except (ValueError, TypeError) as error:
        raise click.BadParameter(
            f"is not a server URL redis-py can use ({error}), got {_shown(value)!r}"
        ) from None
    return value


def _pipeline_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter(f"must name the pipeline, got {value!r}")
    return value


def _is_redis(runtime: str) -> bool:
    return runtime == "redis" or runtime.startswith(REDIS_SCHEMES)


def _shown(runtime: str) -> str:
    """``runtime`` fit to print: a server URL's password hidden."""
    from critsec.runtimes._redis_client import redact

    return redact(runtime)


_runtime_option = click.option(
    "--runtime",
    "-r",
    metavar="NAME|URL",
    required=True,
    callback=_runtime_name,
    help=f"Where the tasks run: {', '.join(critsec.RUNTIMES)}; or a redis server's URL, "
    "redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS, unix://PATH): the redis "
    "runtime on that server, whose primitives programs on other machines share.",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line on stdout, no table."
)


def _plot_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--plot",
        "plot_file",
        metavar="FILE",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Also draw {what} to FILE (.png, .svg, .pdf); needs matplotlib "
        "(pip install 'critsec[lab]').",
    )


def _ready_to_plot(plot_file: Path | None) -> None:
    """Before any work: matplotlib is there and FILE can be written."""
    if plot_file is None:
        return
    try:
        plot.require_matplotlib()
    except plot.MissingExtra as error:
        raise click.UsageError(str(error)) from None
    _check_writable(plot_file, "--plot")
    try:
        plot.image_format(plot_file)
    except ValueError as error:
        raise click.UsageError(f"--plot: cannot draw {plot_file}: {error}") from None


def _plotted(draw: Callable[[], object], plot_file: Path, as_json: bool) -> None:
    try:
        draw()
    except OSError as error:
        raise click.UsageError(f"--plot: cannot write {plot_file}: {error.strerror}") from None
    if not as_json:
        click.echo(f"plot: {plot_file}")


def _stdout(width: int = 100) -> Console:
    # Not a terminal (a pipe, a file): 100 columns rather than rich's 80, so
    # tables do not wrap into unreadable cells.
    return Console(highlight=False, width=None if sys.stdout.isatty() else width)


def _show_progress(as_json: bool) -> bool:
    """Progress only for a person watching: stdout a terminal, no --json."""
    return not as_json and sys.stdout.isatty()


def _emit_json(record: dict[str, Any]) -> None:
    click.echo(json.dumps(record))


@click.group(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(critsec.__version__, prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """See, prove and fix critical sections: the lesson's experiments, run for real.

    Start with `critsec demo --quick`.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command()
@_runtime_option
@click.option(
    "--lock/--no-lock",
    default=True,
    show_default=True,
    help="Protect each update with the runtime's lock.",
)
@click.option(
    "--tasks",
    "-k",
    **POSITIVE,
    default=2,
    show_default=True,
    help="Tasks; even-numbered ones add 1, odd-numbered ones subtract 1 "
    "(an odd count has one more adder).",
)
@click.option(
    "--iterations",
    "-n",
    **POSITIVE,
    default=lab.LESSON_ITERATIONS,
    show_default=True,
    help="Updates per adding task; subtracting tasks do one more.",
)
@click.option(
    "--trials",
    "-t",
    **POSITIVE,
    default=1,
    show_default=True,
    help="Independent runs, each with a fresh counter.",
)
@click.option(
    "--kill-holder",
    is_flag=True,
    help="Processes: SIGKILL task 0 inside its critical section at a random update "
    "(from --seed); the others go on, and the next owner of the lock is told.",
)
@click.option("--seed", type=int, default=None, help="Where --kill-holder kills (default: random).")
@_plot_option("the lost updates of each trial and their histogram")
@_json_option
def counter(
    runtime: str,
    lock: bool,
    tasks: int,
    iterations: int,
    trials: int,
    kill_holder: bool,
    seed: int | None,
    plot_file: Path | None,
    as_json: bool,
) -> int:
    """Tasks update one counter that starts at 10, with or without a lock.

    Two tasks end at 9 when no update is lost. Without a lock each update
    is `counter.value += delta` -- a read, then a write; on coroutines and
    asyncio the task also switches between the read and the write, and with
    the lock it holds the lock across that switch. lost_updates is
    |expected - observed|, the net number of updates lost.

    Exits 1 if a run with the lock is not exact.
    """
    if kill_holder:
        if plot_file is not None:
            raise click.UsageError("--plot does not apply to --kill-holder")
        return _counter_killing_holder(runtime, lock, tasks, iterations, trials, seed, as_json)
    _ready_to_plot(plot_file)
    rt = critsec.runtime(runtime)
    results = []
    with progress(trials, _show_progress(as_json)) as track:
        for trial in range(1, trials + 1):
            track(f"trial {trial}/{trials}: {_shown(runtime)}, {'lock' if lock else 'no lock'}")
            result = lab.run_counter(rt, lock=lock, tasks=tasks, iterations=iterations, trial=trial)
            results.append(result)
            if as_json:
                _emit_json(result.to_json())
    if not as_json:
        _stdout().print(render_counter(results))
    if plot_file is not None:
        title = (
            f"critsec counter: {_shown(runtime)}, {'lock' if lock else 'no lock'}, {tasks} tasks "
            f"x {iterations:,} updates, {trials} trial{'s' if trials != 1 else ''}"
        )
        records = [r.to_json() for r in results]
        _plotted(lambda: plot.plot_counter(records, plot_file, title), plot_file, as_json)
    return 1 if lock and not all(r.exact for r in results) else 0


@cli.command()
@_runtime_option
@click.option("--producers", "-p", **POSITIVE, default=2, show_default=True, help="Producer tasks.")
@click.option("--consumers", "-c", **POSITIVE, default=2, show_default=True, help="Consumer tasks.")
@click.option(
    "--items",
    "-n",
    **POSITIVE,
    default=10_000,
    show_default=True,
    help="Items in total, numbered 0..N-1 and dealt out round-robin to producers.",
)
@click.option(
    "--maxsize",
    "-m",
    **NON_NEGATIVE,
    default=10,
    show_default=True,
    help="Queue bound; 0 means unbounded.",
)
@click.option(
    "--kill",
    **NON_NEGATIVE,
    default=0,
    help="Processes: SIGKILL N consumers at random moments mid-run (from --seed), "
    "each replaced by a new one.",
)
@click.option(
    "--delivery",
    type=click.Choice(["at-most-once", "at-least-once"]),
    default="at-most-once",
    show_default=True,
    help="Processes: at-least-once delivers again the item a killed consumer held.",
)
@click.option("--seed", type=int, default=None, help="When --kill kills (default: random).")
@click.option(
    "--role",
    type=click.Choice(lab.ROLES),
    default="both",
    show_default=True,
    help="Redis: run one side only -- producer or consumer -- of the pipeline --name NAME, "
    "the other side running elsewhere (another terminal, another machine).",
)
@click.option(
    "--name",
    callback=_pipeline_name,
    help="Redis: the pipeline's name on the server, where its two sides meet.",
)
@_plot_option("the queue's length over the run and each consumer's items per second")
@_json_option
def pipeline(
    runtime: str,
    producers: int,
    consumers: int,
    items: int,
    maxsize: int,
    kill: int,
    delivery: str,
    seed: int | None,
    role: str,
    name: str | None,
    plot_file: Path | None,
    as_json: bool,
) -> int:
    """Producers put numbered items into a bounded queue; consumers take them.

    Consumers block in get(); the last producer to finish shuts the queue
    down, and consumers stop once it is drained. Checks that every item
    was consumed exactly once and that the queue never held more than
    maxsize items; exits 1 if not. With --kill, consumers die mid-run:
    at-least-once delivery must lose nothing; at-most-once may lose the
    items the killed consumers held (one each), never more.

    On a redis server, one pipeline can span machines: run
    `--role producer --name NAME` in one place and `--role consumer --name
    NAME` in another, in either order. The producer side takes --producers,
    --items and --maxsize, and starts a fresh run of NAME; the consumer side
    takes --consumers, waits for the run if it has not started, and checks
    what it took against the item count the producer side recorded.

    With --plot, the queue's length is sampled over the run, and --json
    adds the samples and what each consumer took.
    """
    _check_sides(runtime, role, name)
    if plot_file is not None and (kill or delivery != "at-most-once" or role != "both"):
        raise click.UsageError(
            "--plot draws a whole pipeline run: not with --kill, --delivery or --role"
        )
    _ready_to_plot(plot_file)
    if kill or delivery != "at-most-once":
        _needs_processes(runtime, "--kill and --delivery")
        with progress(1, _show_progress(as_json)) as track:
            track(f"pipeline on processes: {items:,} items, {kill} consumers killed")
            killed = lab.pipeline_with_kills(
                runtime,
                producers=producers,
                consumers=consumers,
                items=items,
                maxsize=maxsize,
                kills=kill,
                delivery=delivery,
                seed=seed,
            )
        if as_json:
            _emit_json(killed.to_json())
        else:
            _stdout().print(render_pipeline_kills(killed))
        return 0 if killed.ok else 1
    with progress(1, _show_progress(as_json)) as track:
        track(
            f"pipeline on {_shown(runtime)}: {items:,} items"
            if role == "both"
            else f"pipeline on {_shown(runtime)}: the {role} side of {name!r}"
        )
        result = lab.run_pipeline(
            runtime,
            producers=producers,
            consumers=consumers,
            items=items,
            maxsize=maxsize,
            role=role,
            name=name,
            sample=plot_file is not None,
        )
    record = result.to_json()
    if as_json:
        _emit_json(record)
    else:
        _stdout().print(render_pipeline(result))
    if plot_file is not None:
        title = (
            f"critsec pipeline: {_shown(runtime)}, {producers} producers, {consumers} consumers, "
            f"{items:,} items, maxsize {maxsize}"
        )
        _plotted(lambda: plot.plot_pipeline(record, plot_file, title), plot_file, as_json)
    return 0 if result.ok else 1


def _needs_processes(runtime: str, what: str) -> None:
    """``what`` (options, plural) work on processes only."""
    if runtime != "processes":
        raise click.UsageError(
            f"{what} work with --runtime processes only, not {_shown(runtime)}: "
            "only a process can die alone"
        )


def _check_sides(runtime: str, role: str, name: str | None) -> None:
    """--role and --name: a pipeline whose sides meet at a queue on a server."""
    if role == "both" and name is None:
        return
    given = "--name" if role == "both" else f"--role {role}"
    if not _is_redis(runtime):
        raise click.UsageError(
            f"{given} works with a redis runtime only (redis, or a server URL), not "
            f"{_shown(runtime)}: the two sides of a pipeline meet at a queue on a server"
        )
    if name is None:
        raise click.UsageError(f"{given} needs --name: the pipeline whose {role} side to run")
    if runtime == "redis" and role != "both":
        raise click.UsageError(
            f"{given} needs a server the other side can reach too, -r redis://HOST:PORT/DB: "
            "-r redis is a private server, gone when this command ends"
        )


def _counter_killing_holder(
    runtime: str,
    lock: bool,
    tasks: int,
    iterations: int,
    trials: int,
    seed: int | None,
    as_json: bool,
) -> int:
    _needs_processes(runtime, "--kill-holder and its --seed")
    if not lock or tasks < 2:
        raise click.UsageError("--kill-holder needs the lock and at least 2 tasks")
    results = []
    with progress(trials, _show_progress(as_json)) as track:
        for trial in range(1, trials + 1):
            track(f"trial {trial}/{trials}: processes, a holder killed")
            trial_seed = None if seed is None else seed + trial - 1
            result = lab.counter_with_dying_holder(
                runtime, tasks=tasks, iterations=iterations, seed=trial_seed
            )
            results.append(result)
            if as_json:
                _emit_json(result.to_json())
    if not as_json:
        _stdout().print(render_holder_killed(results))
    return 0 if all(r.ok for r in results) else 1


@cli.command()
@click.option("--port", **POSITIVE, help="The loopback port to listen on.  [default: a free one]")
def server(port: int | None) -> int:
    """Run a private redis server until Ctrl-C, for other terminals.

    Prints its URL, for `--runtime URL` in other commands -- the two sides
    of `critsec pipeline --role ...`, say. Keeps nothing on disk; stops
    with this command (Ctrl-C, SIGTERM, or this command killed).
    """
    from critsec.runtimes import _redis_server

    try:
        running = _redis_server.start(port=port)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    try:
        click.echo(f"{running.url}  ({running.version}; Ctrl-C stops it)")
        running.process.wait()
    finally:
        running.stop()
    raise click.ClickException(f"the server stopped by itself (exit {running.process.returncode})")


@cli.command()
@click.option("--quick", is_flag=True, help="Smaller sizes: done in seconds.")
def demo(quick: bool) -> int:
    """The lesson as a guided tour: each claim run for real and judged.

    Exits 0 only when every step behaves as the lesson says.
    """
    console = _stdout()
    steps = lab.demo_steps(quick)
    passed = 0
    for pending in steps:
        with progress(1, _show_progress(False)) as track:
            track(f"step {pending.number}/{len(steps)}: {pending.title}")
            step = pending.run()
        console.print(render_demo_step(step))
        if step.trace:
            # As it is: the trace fits 100 columns; wrapping its rows would
            # scramble the columns (the terminal may still fold them).
            console.print(step.trace, markup=False, highlight=False, soft_wrap=True)
            console.print()
        passed += step.passed
    console.print(f"{passed} of {len(steps)} steps behave as the lesson says.")
    return 0 if passed == len(steps) else 1


#: Columns of the bench's table when not on a terminal: its rows' names are long.
BENCH_WIDTH = 120


@cli.command()
@click.option("--quick", is_flag=True, help="Smaller sizes and 3 repeats: under a minute.")
@click.option(
    "--only",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Only the rows whose name contains PATTERN (shell wildcards allowed, e.g. "
    "'processes queue*'); repeat for more.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=None,
    help="Interleaved repeats per contender (default: 7, or 3 with --quick).",
)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also draw the ratios and the scaling sweep to FILE (.png, .svg, .pdf); "
    "needs matplotlib (pip install 'critsec[lab]').",
)
@_json_option
def bench(
    quick: bool,
    patterns: tuple[str, ...],
    repeats: int | None,
    plot_file: str | None,
    as_json: bool,
) -> int:
    """Each runtime's primitives next to their standard-library peer, side by side.

    Each row does the same work twice -- with critsec and with its anchor
    (multiprocessing.Queue, asyncio.Lock, a bare round-robin loop, ...) --
    in interleaved repeats in one process of its own, and shows the medians
    per operation and the ratio critsec / anchor (below 1: critsec is
    faster) against the row's target. Every run's result is checked.

    Exits 1 if a run did its work wrongly (a lost update, a lost item).
    """
    rows = bench_rows.select_rows(list(patterns))
    memory = bench_rows.select_memory(list(patterns))
    if not rows and not memory:
        raise click.UsageError(f"no bench row matches {', '.join(map(repr, patterns))}")
    if plot_file is not None:
        try:
            plot.require_matplotlib()
        except plot.MissingExtra as error:
            raise click.UsageError(str(error)) from None
    machine = bench_rows.machine()
    results: list[bench_rows.BenchRow] = []
    memory_results: list[bench_rows.MemoryRow] = []

    def show() -> None:
        if results:
            _stdout(BENCH_WIDTH).print(render_bench(results, machine))
        if memory_results:
            _stdout(BENCH_WIDTH).print(render_memory(memory_results))

    with progress(len(rows) + 2 * len(memory), _show_progress(as_json)) as track:
        try:
            for row in bench_rows.run_bench(rows, quick, repeats, track):
                results.append(row)
                if as_json:
                    _emit_json({**row.to_json(), "machine": machine})
            for memory_row in bench_rows.run_memory(memory, quick, track):
                memory_results.append(memory_row)
                if as_json:
                    _emit_json({**memory_row.to_json(), "machine": machine})
        except bench_rows.BenchFailed as error:
            if not as_json:
                show()
            raise click.ClickException(f"wrong result: {error}") from None
    if not as_json:
        show()
    if plot_file is not None:
        title = f"critsec bench, Python {machine['python']}, {machine['cpus']} CPUs"
        plot.plot_bench(results, plot_file, title)  # the memory rows are in the table
        if not as_json:
            click.echo(f"plot: {plot_file}")
    return 0


@cli.command()
@click.option(
    "--out",
    "-o",
    metavar="FILE",
    type=click.Path(path_type=Path),
    default="critsec-report.html",
    show_default=True,
    help="Where to write the report.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Smaller sizes and no bench: well under a minute.",
)
def report(out: Path, quick: bool) -> int:
    """The lab's findings as one self-contained HTML file.

    The lesson's tour with its verdicts, lost updates over trials (threads,
    processes, coroutines), the bench (not with --quick) and the explorer's
    interleaving of the lesson's race as a step-through player. Charts need
    matplotlib (pip install 'critsec[lab]'); without it, tables only.

    Exits 0 when every step of the tour behaves as the lesson says, 1 if
    not (the report is written either way).
    """
    from critsec.lab import _report

    _check_writable(out, "--out")  # before minutes of work
    with progress(_report.jobs(quick), _show_progress(False)) as track:
        made = _report.build_report(quick, track)
    _write(out, made.html, "--out")
    click.echo(f"report: {out} ({made.passed} of {made.steps} steps behave as the lesson says)")
    return 0 if made.passed == made.steps else 1


# -- explore ----------------------------------------------------------------------------

#: What a scenario is made of (see ``explore --help``).
SCENARIO_PARTS = ("setup", "tasks", "invariant")

Scenario = tuple[Callable[[], Any], list[Callable[..., Any]], Callable[[Any], bool]]


#: Seconds a scenario's module may take to import (``--import-timeout``).
IMPORT_TIMEOUT = 30.0
#: Steps one schedule may take (``--max-steps``; explore()'s ``max_steps``).
MAX_STEPS = 100_000


def _import_target(target: str, timeout: float = IMPORT_TIMEOUT) -> ModuleType:
    """The user's file (``path/to/file.py``) or module (``package.module``),
    imported as ``python file.py`` / ``python -m module`` would find it.

    A module that exits the process while it is imported (``sys.exit()``,
    ``os._exit()``), or does not finish within ``timeout`` seconds, is a
    one-line usage error, never a silent exit. The time limit is a watchdog
    (:mod:`critsec._watchdog`): a loop is interrupted; one long C call
    (``time.sleep``, ``input()``) only once it returns."""
    try:
        with ProcessExitsRefused(), Watchdog(timeout):
            return _import(target)
    except Overtime:
        raise click.UsageError(
            f"importing {target} took more than {timeout:g} s: does it run forever at import? "
            "(move the work into a function, under `if __name__ == '__main__':`, or raise "
            "--import-timeout)"
        ) from None
    except SystemExit as exit:
        how = exit.call if isinstance(exit, ProcessExit) else _exception_line(exit)
        raise click.UsageError(
            f"{target} ends the process while being imported ({how}): "
            "move that under `if __name__ == '__main__':`"
        ) from None


def _import(target: str) -> ModuleType:
    try:
        if not (target.endswith(".py") or "/" in target or os.sep in target):
            sys.path.insert(0, os.getcwd())  # as `python -m` does
            return importlib.import_module(target)
        path = Path(target)
        if not path.is_file():
            raise click.UsageError(f"no such file: {target}")
        # The file's own directory first, so that it can import its neighbours.
        sys.path.insert(0, str(path.resolve().parent))
        # A private module name: the file's stem might shadow a real module
        # ("queue.py"); registered so that dataclasses and pickle find it.
        spec = importlib.util.spec_from_file_location("__critsec_scenario__", path)
        if spec is None or spec.loader is None:
            raise click.UsageError(f"cannot load {target} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    except click.UsageError:
        raise
    except ModuleNotFoundError as error:
        if error.name is not None and target.startswith(error.name):
            raise click.UsageError(f"no such module: {target}") from None
        raise click.UsageError(f"cannot import {target}: {_exception_line(error)}") from None
    except Exception as error:  # the user's module failed to run: say where, not how
        raise click.UsageError(f"cannot import {target}: {_exception_line(error)}") from None


def _exception_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _parts(value: Any) -> tuple[Any, Any, Any] | None:
    """(setup, tasks, invariant) from a 3-tuple, a mapping with those keys,
    or any object (a module, a class, an instance) with those attributes."""
    if isinstance(value, tuple) and len(value) == 3:
        return value[0], value[1], value[2]
    if isinstance(value, Mapping) and all(part in value for part in SCENARIO_PARTS):
        return value["setup"], value["tasks"], value["invariant"]
    if all(hasattr(value, part) for part in SCENARIO_PARTS):
        return value.setup, value.tasks, value.invariant
    return None


def _load_scenario(spec: str, import_timeout: float = IMPORT_TIMEOUT) -> Scenario:
    """The scenario ``FILE_OR_MODULE:NAME`` names, checked. Raises
    ``click.UsageError`` (one line) for anything that is not one.

    NAME (dotted for an attribute of an attribute) must be a
    ``(setup, tasks, invariant)`` tuple, a dict or object with those three
    names, or a function taking no arguments that returns one of those.
    Imports the user's code: main thread, command line only."""
    target, colon, name = spec.rpartition(":")
    if not colon or not target or not name:
        raise click.UsageError(f"the scenario must be FILE_OR_MODULE:NAME, got {spec!r}")
    value: Any = _import_target(target, import_timeout)
    for attribute in name.split("."):
        if not hasattr(value, attribute):
            raise click.UsageError(f"{target} has no {name!r}")
        value = getattr(value, attribute)
    parts = _parts(value)
    if parts is None and callable(value):
        try:
            parts = _parts(value())
        except TypeError as error:  # a function that wants arguments: a shape error
            raise click.UsageError(
                f"{name}() failed: {_exception_line(error)}; a scenario function takes no arguments"
            ) from None
        except Exception as error:
            raise click.UsageError(f"{name}() failed: {_exception_line(error)}") from None
    if parts is None:
        raise click.UsageError(
            f"{name} is not a scenario: it must be a (setup, tasks, invariant) tuple, a dict or "
            "object with setup, tasks and invariant, or a function returning one"
        )
    setup, tasks, invariant = parts
    if not callable(setup) or not callable(invariant):
        raise click.UsageError(f"{name}: setup and invariant must be callables")
    if isinstance(tasks, str | bytes) or not isinstance(tasks, Sequence) or not tasks:
        raise click.UsageError(f"{name}: tasks must be a non-empty list of functions")
    try:
        common_kind(tasks)  # every task callable, all of one kind
    except (TypeError, ValueError) as error:
        raise click.UsageError(f"{name}: {error}") from None
    return setup, list(tasks), invariant


def _strategy_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and value not in explorer.STRATEGIES:
        raise click.BadParameter(f"must be one of {', '.join(explorer.STRATEGIES)}, got {value!r}")
    return value


def _seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise click.BadParameter(f"must be a number of seconds, got {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise click.BadParameter(f"must be a positive number of seconds, got {value}")
    return seconds


def _token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            decode_schedule(value)
        except ValueError as error:
            raise click.BadParameter(f"must be a token a failure printed ({error})") from None
    return value


@cli.command(name="explore")
@click.argument("scenario", metavar="FILE_OR_MODULE:NAME")
@click.option(
    "--strategy",
    "-s",
    metavar="S",
    callback=_strategy_name,
    help=f"How to pick schedules: {', '.join(explorer.STRATEGIES)} "
    "(dfs tries every one).  [default: pct, or $CRITSEC_STRATEGY]",
)
@click.option(
    "--max-schedules",
    "--schedules",
    "-n",
    "schedules",
    **POSITIVE,
    help="Stop after this many schedules.  [default: 1000, or $CRITSEC_MAX_SCHEDULES]",
)
@click.option(
    "--preemption-bound",
    **NON_NEGATIVE,
    help="dfs: at most this many preemptions per schedule.  "
    "[default: none, or $CRITSEC_PREEMPTION_BOUND]",
)
@click.option(
    "--timeout",
    metavar="SECONDS",
    callback=lambda ctx, param, value: None if value is None else _seconds(ctx, param, value),
    help="Stop the search after this long.  [default: none, or $CRITSEC_TIMEOUT]",
)
@click.option(
    "--seed",
    **NON_NEGATIVE,
    help="Seed of the search: the same seed, the same schedules.  [default: fresh]",
)
@click.option(
    "--replay",
    "token",
    metavar="TOKEN",
    callback=_token,
    help="Run only this schedule: the token a failure printed.",
)
@click.option(
    "--max-steps",
    **POSITIVE,
    help="Give up on a schedule that takes more steps (a task that loops for ever).  "
    f"[default: {MAX_STEPS}, or $CRITSEC_MAX_STEPS]",
)
@click.option(
    "--reduction/--no-reduction",
    default=None,
    help="dfs on thread tasks: skip schedules that only reorder independent steps "
    "(partial-order reduction).  [default: on, or $CRITSEC_REDUCTION]",
)
@click.option(
    "--import-timeout",
    metavar="SECONDS",
    callback=_seconds,
    default=str(IMPORT_TIMEOUT),
    show_default=True,
    help="Give up on a scenario whose module takes longer to import.",
)
@click.option(
    "--html",
    "html_file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Also write the result to FILE as one self-contained HTML page: the failing "
    "schedule as a step-through player.",
)
@_json_option
def explore_command(
    scenario: str,
    strategy: str | None,
    schedules: int | None,
    preemption_bound: int | None,
    timeout: float | None,
    seed: int | None,
    token: str | None,
    max_steps: int | None,
    reduction: bool | None,
    import_timeout: float,
    html_file: Path | None,
    as_json: bool,
) -> int:
    """Search the interleavings of a scenario for one that breaks it.

    A scenario lives in your file or module: NAME is a tuple
    (setup, tasks, invariant), a dict or object with those three names
    (a module or class will do), or a function taking no arguments that
    returns one of those. setup() builds fresh state for each schedule;
    each task is called with it -- plain functions as threads switched
    between bytecodes, generator functions at each yield, async functions
    at each await; invariant(state) must then be true.

    Prints the failing schedule (its trace) and a token that replays it.
    Exits 1 when a schedule fails, 0 when none did. For example, with

    \b
        # racy.py
        def setup():
            return {"n": 0}
        def bump(state):
            state["n"] += 1
        scenario = (setup, [bump, bump], lambda state: state["n"] == 2)

    `critsec explore racy.py:scenario` shows the lost update.
    """
    try:
        settings = explorer.Settings.from_env().given(
            strategy=strategy, preemption_bound=preemption_bound
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if settings.preemption_bound is not None and settings.strategy != "dfs":
        raise click.UsageError("--preemption-bound applies to --strategy dfs only")
    if html_file is not None:
        _check_writable(html_file, "--html")  # before a search that may take long
    setup, tasks, invariant = _load_scenario(scenario, import_timeout)
    if token is not None:
        searching = (
            ("strategy", strategy),
            ("max-schedules", schedules),
            ("preemption-bound", preemption_bound),
            ("timeout", timeout),
            ("seed", seed),
            ("reduction" if reduction else "no-reduction", reduction),
        )
        given = [f"--{n}" for n, v in searching if v is not None]
        if given:
            raise click.UsageError(f"--replay runs one schedule: it takes no {', '.join(given)}")
    try:
        if token is not None:
            result = explorer.replay(setup, tasks, invariant, token, max_steps=max_steps)
        else:
            result = explorer.explore(
                setup,
                tasks,
                invariant,
                strategy=strategy,
                max_schedules=schedules,
                preemption_bound=preemption_bound,
                timeout=timeout,
                seed=seed,
                max_steps=max_steps,
                reduction=reduction,
            )
    except explorer.ReplayMismatch as error:
        if token is None:
            raise  # dfs met a nondeterministic program: main() says so in one line
        raise click.UsageError(f"--replay: {error}") from None
    except critsec.CritsecError:
        raise  # an exploration limit: main() says which in one line
    except (Exception, SystemExit) as error:
        # A task's exception is a finding, reported in the trace; this one
        # came from setup() or the like, outside any schedule's tasks (and a
        # sys.exit() there must not pass for the command's own exit).
        raise click.ClickException(
            f"the scenario failed outside its tasks: {_exception_line(error)}"
        ) from None
    command = f"{PROG} explore {shlex.quote(scenario)} --replay {{token}}"
    if html_file is not None:
        page = render_html(
            result, replay_command=command.replace("{token}", str(result.schedule)), page=True
        )
        _write(html_file, page, "--html")
    if as_json:
        _emit_json(result.to_json())
    else:
        click.echo(summary(result, f"replay: {command}"))
    return 1 if result.failed else 0


def _write(path: Path, text: str, option: str) -> None:
    """Write the file an option named; a one-line usage error if it cannot be."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise click.UsageError(f"{option}: cannot write {path}: {error.strerror}") from None


def _check_writable(path: Path, option: str) -> None:
    """A one-line usage error unless ``path`` looks like a file that can be written."""
    folder = path.parent
    if path.is_dir():
        problem = "is a directory"
    elif not folder.is_dir():
        problem = "no such directory"
    elif not os.access(path if path.exists() else folder, os.W_OK):
        problem = "permission denied"
    else:
        return
    raise click.UsageError(f"{option}: cannot write {path}: {problem}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_message(error: click.UsageError) -> str:
    if (
        isinstance(error, click.BadParameter)
        and not isinstance(error, click.MissingParameter)
        and error.param is not None
    ):
        # "--tasks must be a positive integer, got 0" reads better than
        # click's "Invalid value for '--tasks': ...".
        name = error.param.opts[0] if error.param.opts else error.param.name
        message = f"{name} {error.message}"
    else:
        message = error.format_message().rstrip(".")
    if error.ctx is not None:
        message += f"; see '{error.ctx.command_path} --help'"
    return _one_line(message)


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (``run`` stops its
    children on the way out), then exit with 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum: int, frame: object) -> None:
    raise _Signalled(signum)


#: Signals that end the command as the shell expects (143, 129), after
#: cleaning up, and the word for each.
ENDING_SIGNALS = {signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


#: What the command prints beyond ASCII, and what stands for it where the
#: output cannot show it (PYTHONIOENCODING=ascii, a C locale, a pipe to such).
ASCII = {
    "➜": "->",
    "⚠": "!",
    "⋮": ":",
    "…": "...",
    "µ": "u",
    "\N{MULTIPLICATION SIGN}": "x",
    "≤": "<=",
    "—": "--",
}


def _to_ascii(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeEncodeError)
    text = error.object[error.start : error.end]
    return "".join(ASCII.get(char, "?") for char in text), error.end


codecs.register_error("critsec-ascii", _to_ascii)


def _fall_back_to_ascii() -> None:
    """Where stdout or stderr cannot encode what critsec prints, replace it
    rather than crash with UnicodeEncodeError (rich draws its tables and
    bars in ASCII there by itself)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        reconfigure = getattr(stream, "reconfigure", None)
        if not encoding or reconfigure is None:
            continue
        try:
            "".join(ASCII).encode(encoding)
        except UnicodeEncodeError:
            reconfigure(errors="critsec-ascii")
        except LookupError:  # an encoding Python does not know: leave it be
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``critsec`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status; never raises for bad usage, failed tasks,
    Ctrl-C (130), SIGTERM (143) or SIGHUP (129) -- it prints one line to
    stderr instead.
    """
    _fall_back_to_ascii()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in ENDING_SIGNALS:
            if signal.getsignal(sig) == signal.SIG_DFL:  # an ignored one stays ignored
                previous[sig] = signal.signal(sig, _raise_signalled)
    try:
        return _main(argv)
    except _Signalled as ending:
        click.echo(f"{PROG}: {ENDING_SIGNALS[signal.Signals(ending.signum)]}", err=True)
        return 128 + ending.signum
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _main(argv: Sequence[str] | None) -> int:
    try:
        status = cli.main(
            list(argv) if argv is not None else None, prog_name=PROG, standalone_mode=False
        )
    except click.UsageError as error:
        click.echo(f"{PROG}: error: {_usage_message(error)}", err=True)
        return 2
    except click.ClickException as error:
        click.echo(f"{PROG}: error: {_one_line(error.format_message())}", err=True)
        return error.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo(f"{PROG}: interrupted", err=True)
        return 130
    except (critsec.CritsecError, TimeoutError, ImportError) as error:
        # A task failed, timed out, a server is unreachable (its URL shown
        # without a password) or a runtime is not installed: the first line
        # says which; the rest (a task's traceback) is noise here.
        click.echo(f"{PROG}: error: {_one_line(str(error).splitlines()[0])}", err=True)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
