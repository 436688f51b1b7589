"""The ``critsec`` command: the lesson's experiments from the shell.

A thin layer over :mod:`critsec.lab`: parse options, run, print. Results go
to stdout (a rich table, or one JSON object per line with ``--json``);
errors go to stderr as one line. Exit status: 0 when the run behaved as
critsec promises, 1 when a promise was broken (a locked counter that is not
exact, a pipeline that lost or duplicated an item, a demo step that failed)
or a task failed, 2 for bad usage, 130 on Ctrl-C.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console

import critsec
from critsec import lab
from critsec.lab._progress import progress
from critsec.lab._render import render_counter, render_demo_step, render_pipeline

__all__ = ["main"]

PROG = "critsec"


def _count_option(minimum: int, kind: str) -> dict[str, Any]:
    """Keyword arguments for a ``click.option`` taking an integer >= ``minimum``;
    anything else gets a one-line complaint naming ``kind``."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | int) -> int:
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
    if value not in critsec.RUNTIMES:
        raise click.BadParameter(f"must be one of {', '.join(critsec.RUNTIMES)}, got {value!r}")
    return value


_runtime_option = click.option(
    "--runtime", "-r", metavar="NAME", required=True, callback=_runtime_name,
    help=f"Where the tasks run: {', '.join(critsec.RUNTIMES)}.",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line on stdout, no table."
)


def _stdout() -> Console:
    # Not a terminal (a pipe, a file): 100 columns rather than rich's 80, so
    # tables do not wrap into unreadable cells.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 100)


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
@click.option("--lock/--no-lock", default=True, show_default=True,
              help="Protect each update with the runtime's lock.")
@click.option("--tasks", "-k", **POSITIVE, default=2, show_default=True,
              help="Tasks; even-numbered ones add 1, odd-numbered ones subtract 1 "
                   "(an odd count has one more adder).")
@click.option("--iterations", "-n", **POSITIVE, default=lab.LESSON_ITERATIONS,
              show_default=True, help="Updates per adding task; subtracting tasks do one more.")
@click.option("--trials", "-t", **POSITIVE, default=1, show_default=True,
              help="Independent runs, each with a fresh counter.")
@_json_option
def counter(runtime: str, lock: bool, tasks: int, iterations: int, trials: int,
            as_json: bool) -> int:
    """Tasks update one counter that starts at 10, with or without a lock.

    Two tasks end at 9 when no update is lost. Without a lock each update
    is `counter.value += delta` -- a read, then a write; on coroutines and
    asyncio the task also switches between the read and the write, and with
    the lock it holds the lock across that switch. lost_updates is
    |expected - observed|, the net number of updates lost.

    Exits 1 if a run with the lock is not exact.
    """
    rt = critsec.runtime(runtime)
    results = []
    with progress(trials, _show_progress(as_json)) as track:
        for trial in range(1, trials + 1):
            track(f"trial {trial}/{trials}: {runtime}, {'lock' if lock else 'no lock'}")
            result = lab.run_counter(rt, lock=lock, tasks=tasks, iterations=iterations,
                                     trial=trial)
            results.append(result)
            if as_json:
                _emit_json(result.to_json())
    if not as_json:
        _stdout().print(render_counter(results))
    return 1 if lock and not all(r.exact for r in results) else 0


@cli.command()
@_runtime_option
@click.option("--producers", "-p", **POSITIVE, default=2, show_default=True,
              help="Producer tasks.")
@click.option("--consumers", "-c", **POSITIVE, default=2, show_default=True,
              help="Consumer tasks.")
@click.option("--items", "-n", **POSITIVE, default=10_000, show_default=True,
              help="Items in total, numbered 0..N-1 and dealt out round-robin to producers.")
@click.option("--maxsize", "-m", **NON_NEGATIVE, default=10, show_default=True,
              help="Queue bound; 0 means unbounded.")
@_json_option
def pipeline(runtime: str, producers: int, consumers: int, items: int, maxsize: int,
             as_json: bool) -> int:
    """Producers put numbered items into a bounded queue; consumers take them.

    Consumers block in get(); the last producer to finish shuts the queue
    down, and consumers stop once it is drained. Checks that every item
    was consumed exactly once and that the queue never held more than
    maxsize items; exits 1 if not.
    """
    with progress(1, _show_progress(as_json)) as track:
        track(f"pipeline on {runtime}: {items:,} items")
        result = lab.run_pipeline(runtime, producers=producers, consumers=consumers,
                                  items=items, maxsize=maxsize)
    if as_json:
        _emit_json(result.to_json())
    else:
        _stdout().print(render_pipeline(result))
    return 0 if result.ok else 1


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
        passed += step.passed
    console.print(f"{passed} of {len(steps)} steps behave as the lesson says.")
    return 0 if passed == len(steps) else 1


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``critsec`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status; never raises for bad usage, failed tasks or
    Ctrl-C -- it prints one line to stderr instead.
    """
    try:
        status = cli.main(list(argv) if argv is not None else None, prog_name=PROG,
                          standalone_mode=False)
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
        # A task failed, timed out, or a runtime is not installed: the first
        # line says which; the rest (a task's traceback) is noise here.
        click.echo(f"{PROG}: error: {_one_line(str(error).splitlines()[0])}", err=True)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
