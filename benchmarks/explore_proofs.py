"""How many schedules ``dfs`` needs to prove a correct program, bound by
bound: the figures partial-order reduction is meant to cut.

    python benchmarks/explore_proofs.py [--bounds 1,2,3,none] [--only NAME ...] [--max-schedules N]

For the lesson's locked counter (``critsec.lab``'s two functions, 2 and 3
updates) and for every correct program in ``benchmarks/programs`` with
thread tasks, runs ``explore(..., strategy="dfs", preemption_bound=B)``
for each bound (``none``: no bound, where the reduction also keeps sleep
sets) and prints the schedules it took, whether the search was
exhausted (a proof within the bound) and the seconds. A program that
fails is reported as such: it would be a false alarm. A script, never a
test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import programs

from critsec.explorer import explore
from critsec.lab import _demo

#: setup, tasks, invariant, and the modules to explore inside (``include``).
Scenario = tuple[
    Callable[[], Any], list[Callable[[Any], Any]], Callable[[Any], bool], tuple[str, ...]
]


def scenarios(only: list[str] | None) -> dict[str, Scenario]:
    found: dict[str, Scenario] = {
        "locked lesson": (
            functools.partial(_demo._explored_setup, 2),
            [_demo._locked_task_1, _demo._locked_task_2],
            _demo._lesson_holds,
            _demo.LESSON_CODE,
        )
    }
    for name in programs.names():
        program = programs.load(name)
        if not program.BUG and programs.kind(program) == "blocking":
            found[name] = (program.setup, list(program.tasks), program.invariant, ())
    return {k: v for k, v in found.items() if not only or k in only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bounds", default="1,2,3", help="preemption bounds, none for no bound (default 1,2,3)"
    )
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--max-schedules", type=int, default=20_000, help="per search")
    args = parser.parse_args()
    try:
        bounds = [None if b == "none" else int(b) for b in args.bounds.split(",")]
    except ValueError:
        parser.error(f"--bounds takes numbers and none, separated by commas: {args.bounds!r}")
    print(f"Python {platform.python_version()}; dfs, at most {args.max_schedules:,} schedules")
    print(f"{'scenario':28} {'bound':>5} {'schedules':>10} {'result':>10} {'seconds':>8}")
    for name, (setup, tasks, invariant, include) in scenarios(args.only).items():
        for bound in bounds:
            started = time.perf_counter()
            result = explore(
                setup,
                tasks,
                invariant,
                strategy="dfs",
                preemption_bound=bound,
                max_schedules=args.max_schedules,
                seed=1,
                include=include,
            )
            seconds = time.perf_counter() - started
            verdict = (
                f"FAILS ({result.kind})"
                if result.failed
                else ("proof" if result.exhausted else "no proof")
            )
            shown = "none" if bound is None else bound
            print(f"{name:28} {shown:>5} {result.schedules:>10,} {verdict:>10} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
