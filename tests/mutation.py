"""The standing mutation check: can the behavioural suite see broken primitives?

Runs ``tests/test_primitives.py``, ``tests/test_redis.py`` and
``tests/test_robust.py`` once as they are (they must pass) and once with
each mutant of ``tests/mutants.py`` swapped into the runtimes
(``CRITSEC_MUTANT=<name>``; the mutants of a death against all three
files, the others against the first two), each in its own
``pytest`` subprocess, two at a
time; collects which tests failed on which runtime (a tiny plugin: this
module, loaded with ``-p mutation``), and prints a table, mutant by runtime:
the tests that caught it, ``n/a`` and why, or ``SURVIVED``.

Exit status 1 if the clean run did not pass, if a mutant survived on a
runtime where it applies, or if a test failed on a runtime where nothing
was broken; 0 otherwise. Run from anywhere: ``python tests/mutation.py``
(``-v``: the tests' output too). The suite is deterministic, so the table
is the same on every run; tests whose mutant would make them hang end in a
short run timeout, so a whole check takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SUITE = ("tests/test_primitives.py", "tests/test_redis.py", "tests/test_robust.py")
#: The mutants of a death, which only the fault tests (test_robust.py, real
#: kills, a minute or two a run; test_redis.py) are about; the other mutants
#: run against test_primitives.py and the redis runtime's own tests (seconds),
#: which catch each of them.
FAULTS = (
    "lock-stuck-when-holder-dies",
    "queue-wakes-one",
    "queue-forgets-the-dead",
    "hands-to-the-dead",
)


def suite(mutant: str | None) -> tuple[str, ...]:
    """The test files run with ``mutant`` (None: the clean run, all of them)."""
    return SUITE if mutant is None or mutant in FAULTS else SUITE[:2]


REPORT_ENV = "CRITSEC_MUTATION_REPORT"
#: Seconds one pytest run may take before it is stopped and counted as broken.
RUN_LIMIT = 600
#: Mutants whose runs wait out short run timeouts (hung tasks): started first,
#: so that the others fill the second core meanwhile.
SLOW_FIRST = (
    "lock-stuck-when-holder-dies",
    "queue-wakes-one",
    "shutdown-no-wake",
    "fast-path-wakes-nobody",
    "acquire-ignores-timeout",
)


# -- the plugin, inside each pytest run ---------------------------------------------------

_items: dict[str, dict[str, Any]] = {}


def _runtime_of(item: Any) -> tuple[str, str]:
    """(runtime id, the rest of the parameter id) of a collected test."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return "-", ""
    runtime = callspec.params.get("rt") or callspec.params.get("name") or "-"
    rest = callspec.id
    if runtime != "-" and rest.startswith(runtime):
        rest = rest[len(runtime) :].strip("-")
    return str(runtime), rest


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        runtime, rest = _runtime_of(item)
        name = getattr(item, "originalname", item.name)
        _items[item.nodeid] = {"name": name, "runtime": runtime, "variant": rest, "outcome": ""}


def pytest_runtest_logreport(report: Any) -> None:
    entry = _items.get(report.nodeid)
    if entry is None:
        return
    if report.failed:
        entry["outcome"] = "failed"
    elif report.skipped and entry["outcome"] != "failed":
        entry["outcome"] = "skipped"
    elif report.when == "call" and not entry["outcome"]:
        entry["outcome"] = "passed"


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).write_text(json.dumps({"exitstatus": int(exitstatus), "tests": _items}))


# -- the script -----------------------------------------------------------------------------


@dataclass
class Run:
    """One pytest run of the suite, with ``mutant`` active (None: clean)."""

    mutant: str | None
    seconds: float = 0.0
    exitstatus: int | None = None
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    output: str = ""

    def failed(self, runtime: str) -> list[str]:
        """The failed tests on ``runtime``, as ``name[variant,...]``."""
        variants: dict[str, list[str]] = {}
        for entry in self.tests.values():
            if entry["runtime"] == runtime and entry["outcome"] == "failed":
                variants.setdefault(entry["name"], []).append(entry["variant"])
        return [
            name.removeprefix("test_") + (f"[{','.join(v)}]" if any(v) else "")
            for name, v in sorted(variants.items())
        ]

    def count(self, outcome: str) -> int:
        return sum(entry["outcome"] == outcome for entry in self.tests.values())


def run_suite(mutant: str | None, verbose: bool) -> Run:
    run = Run(mutant)
    with tempfile.TemporaryDirectory(prefix="critsec-mutation-") as tmp:
        report = Path(tmp, "report.json")
        env = dict(os.environ)
        env.pop("CRITSEC_MUTANT", None)
        if mutant is not None:
            env["CRITSEC_MUTANT"] = mutant
        env[REPORT_ENV] = str(report)
        # The plugin (this module) and the suite's helpers are imported from tests/.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        command = [
            sys.executable, "-m", "pytest", *suite(mutant),
            "-p", "mutation", "-p", "no:cacheprovider", "-q", "-o", "timeout=60",
        ]  # fmt: skip
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=RUN_LIMIT,
            )
            run.output = done.stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout
            run.output = (out.decode() if isinstance(out, bytes) else out or "") + (
                f"\n[stopped after {RUN_LIMIT} s]"
            )
        run.seconds = time.monotonic() - started
        if report.exists():
            data = json.loads(report.read_text())
            run.exitstatus, run.tests = data["exitstatus"], data["tests"]
    if verbose:
        print(f"----- {mutant or 'clean'} -----\n{run.output}", flush=True)
    return run


def render(rows: list[list[str]], width: int = 100) -> str:
    """A plain-text table; the last column wraps to keep lines within ``width``."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    last = max(20, width - indent)
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False))
        wrapped = textwrap.wrap(row[-1], last, break_on_hyphens=False) or [""]
        lines.append(f"{head}  {wrapped[0]}" if head else wrapped[0])
        lines.extend(" " * indent + more for more in wrapped[1:])
    lines.insert(1, "  ".join("-" * w for w in [*widths[:-1], min(widths[-1], last)]))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show each run's output")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="runs at a time (default 2)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(TESTS))
    import mutants

    names = list(mutants.MUTANTS)
    slow = [m for m in SLOW_FIRST if m in names]
    order = [None, *slow, *[m for m in names if m not in slow]]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {m: pool.submit(run_suite, m, args.verbose) for m in order}
        runs = {m: f.result() for m, f in futures.items()}
    total = time.monotonic() - started

    ok = True
    clean = runs[None]
    print(
        f"critsec mutation check: {' and '.join(SUITE)} against tests/mutants.py, "
        f"Python {platform.python_version()}"
    )
    clean_ok = clean.exitstatus == 0 and clean.count("passed") > 0 and not clean.count("failed")
    print(
        f"clean run: {clean.count('passed')} passed, {clean.count('failed')} failed, "
        f"{clean.count('skipped')} skipped ({'ok' if clean_ok else 'NOT GREEN'})"
    )
    if not clean_ok:
        ok = False
        print(clean.output[-4000:])
    # The runtimes, in the order the suite collects them.
    runtimes: list[str] = []
    for entry in clean.tests.values():
        if entry["runtime"] != "-" and entry["runtime"] not in runtimes:
            runtimes.append(entry["runtime"])

    grid = [["mutant", *runtimes]]
    details: list[str] = []
    for mutant in names:
        run = runs[mutant]
        row = [mutant]
        texts: dict[str, list[str]] = {}  # result -> the runtimes it holds for
        broken = run.exitstatus not in (0, 1) or not run.tests
        for runtime in runtimes:
            caught = run.failed(runtime)
            if not mutants.applies(mutant, runtime.split("-")[0]):
                reason = str(mutants.MUTANTS[mutant][runtime.split("-")[0]])
                cell, text = "n/a", f"n/a: {reason}"
                if caught:  # nothing was broken there
                    ok = False
                    cell, text = "UNEXPECTED", f"n/a, yet failed: {', '.join(caught)}"
            elif broken:
                ok = False
                cell, text = "BROKEN RUN", f"the run did not complete (exit {run.exitstatus})"
            elif caught:
                cell, text = (
                    f"{len(caught)} test{'s' * (len(caught) > 1)}",
                    "caught by " + (", ".join(caught)),
                )
            else:
                ok = False
                cell, text = "SURVIVED", "SURVIVED: no test failed"
            row.append(cell)
            texts.setdefault(text, []).append(runtime)
        stray = run.failed("-")
        if stray:
            texts[f"runtime-independent tests failed: {', '.join(stray)}"] = ["-"]
        grid.append(row)
        details.append(mutant)
        for text, where in texts.items():
            which = "every runtime" if where == runtimes else ", ".join(where)
            details.extend(
                textwrap.wrap(
                    f"{which}: {text}",
                    100,
                    initial_indent="  ",
                    subsequent_indent="      ",
                    break_on_hyphens=False,
                )
            )
        if broken:
            print(f"\n{mutant}: the run did not complete:\n{run.output[-4000:]}")

    print()
    print(render(grid))
    print()
    print("\n".join(details))
    print()
    timings = ", ".join(f"{m or 'clean'} {runs[m].seconds:.0f} s" for m in order)
    print(f"runs: {timings}; {total:.0f} s in all with {args.jobs} at a time")
    print("OK: every applicable mutant was caught" if ok else "FAILED: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
