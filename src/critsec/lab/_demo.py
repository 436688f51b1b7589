"""The lesson as a guided tour: each claim run for real and judged.

Step 1 is the subtle one. The lesson's threads lose updates on
``counter += 1``; on CPython 3.10 and later that exact code loses
*nothing*, because the interpreter switches threads only at calls and
backward jumps, never between the read and the write of ``counter += 1``
on a global. ``counter.value += 1`` on critsec's counter calls a property
between the two, so there the race shows. Whether a stress run loses
updates is luck; the step is therefore judged on proofs that do not
depend on luck. The explorer (:mod:`critsec.explorer`) runs the lesson's
exact functions as real threads under its own scheduler, switching
between bytecodes, and searches the interleavings until one loses an
update -- and shows it, step by step; with the lesson's lock around the
update, it tries every interleaving (within a preemption bound) and finds
none that loses one. And two real threads are forced, with
``threading.Event`` handshakes, into the bad interleaving (A reads, B
reads and writes, A writes), which loses exactly one update every time.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import critsec

from ._counter import INITIAL, LESSON_ITERATIONS, CounterResult, counter_tasks, run_counter
from ._pipeline import PipelineResult, run_pipeline

__all__ = [
    "DemoCheck",
    "DemoSizes",
    "DemoStep",
    "PendingStep",
    "demo_steps",
    "explore_lesson",
    "forced_interleaving",
    "lesson_coroutine",
    "run_lesson_threads",
]


@dataclass(frozen=True)
class DemoSizes:
    """Iterations per task (the subtracting task does one more) and items;
    ``explored``: iterations per task when the explorer runs the lesson's
    code, where every bytecode is a switch point and a trace is printed."""

    threads: int
    processes: int
    coroutines: int
    pipeline_items: int
    explored: int = 2


#: The lesson's sizes wherever they fit in about a minute on two cores.
FULL = DemoSizes(
    threads=LESSON_ITERATIONS,
    processes=LESSON_ITERATIONS,
    coroutines=LESSON_ITERATIONS,
    pipeline_items=20_000,
)
#: Small enough for a few seconds; big enough that threads usually lose updates.
QUICK = DemoSizes(threads=200_000, processes=50_000, coroutines=50_000, pipeline_items=2_000)

#: The explorer's settings in the demo: a fixed seed, so that the demo
#: shows the same interleaving every time; the locked version is proved
#: with dfs within this many preemptions -- as many as the lost update
#: needs (one, between the read and the write), and fast: a few dozen schedules.
EXPLORER_SEED = 0
PREEMPTION_BOUND = 1
#: The lesson's functions live in this module, part of critsec, whose code
#: the explorer runs without switch points unless told: it is told.
LESSON_CODE = (__name__,)


@dataclass(frozen=True)
class DemoCheck:
    """One run inside a step. ``ok`` is ``None`` for a run that is shown, not
    judged (a stress run whose losses depend on luck)."""

    label: str
    expected: str
    observed: str
    ns_per_op: float | None
    ok: bool | None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "expected": self.expected,
            "observed": self.observed,
            "ns_per_op": self.ns_per_op,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class DemoStep:
    """A finished step: the lesson's claim, what ran, and the verdict."""

    number: int
    title: str
    claim: str
    ran: str
    checks: list[DemoCheck] = field(default_factory=list)
    passed: bool = False
    explanation: str = ""
    trace: str = ""  # an interleaving the explorer found, for people

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "title": self.title,
            "claim": self.claim,
            "ran": self.ran,
            "checks": [check.to_json() for check in self.checks],
            "passed": self.passed,
            "explanation": self.explanation,
            "trace": self.trace,
        }


#: What a step's body returns: its checks, whether it passed, one line of
#: why, and optionally a trace to show.
StepOutcome = tuple[list[DemoCheck], bool, str] | tuple[list[DemoCheck], bool, str, str]


@dataclass(frozen=True)
class PendingStep:
    """A step not yet run: ``run()`` runs it (blocking) and never raises
    for a failed experiment -- a failure is a step that did not pass."""

    number: int
    title: str
    claim: str
    ran: str
    _body: Callable[[], StepOutcome]

    def run(self) -> DemoStep:
        trace = ""
        try:
            checks, passed, explanation, *shown = self._body()
            trace = "".join(shown)
        except Exception as exc:  # reported as the step's failure
            first_line = (str(exc) or type(exc).__name__).splitlines()[0]
            checks, passed, explanation = [], False, f"could not run: {first_line}"
        return DemoStep(
            self.number, self.title, self.claim, self.ran, checks, passed, explanation, trace
        )


# -- the lesson's own code --------------------------------------------------------

lesson_counter = INITIAL


def _lesson_task_1(n: int) -> None:
    global lesson_counter
    for _ in range(n):
        lesson_counter += 1


def _lesson_task_2(n: int) -> None:
    global lesson_counter
    for _ in range(n + 1):
        lesson_counter -= 1


# The same update under the lesson's lock, for the explorer to prove. The
# lock is made by ``_explored_setup``, inside each schedule: a lock made at
# import time would be a real one, outside the explorer's control.
lesson_lock = threading.Lock()


def _locked_task_1(n: int) -> None:
    global lesson_counter
    for _ in range(n):
        with lesson_lock:
            lesson_counter += 1


def _locked_task_2(n: int) -> None:
    global lesson_counter
    for _ in range(n + 1):
        with lesson_lock:
            lesson_counter -= 1


class _Iterations(int):
    """The state of one explored schedule: the iterations per task (the
    lesson's functions take an int), shown as the counter it produced so
    that a failure says what went wrong."""

    def __repr__(self) -> str:
        return f"counter = {lesson_counter} (expected {INITIAL - 1})"


def _explored_setup(n: int) -> _Iterations:
    global lesson_counter, lesson_lock
    lesson_counter = INITIAL
    lesson_lock = threading.Lock()
    return _Iterations(n)


def _lesson_holds(n: int) -> bool:
    return lesson_counter == INITIAL - 1


def explore_lesson(n: int = 2, *, lock: bool = False) -> Any:
    """The lesson's two functions (``lock``: the same under the lesson's
    lock), ``n`` updates each, run as real threads by the explorer.

    Without the lock: PCT with a fixed seed, until a schedule loses an
    update. With it: every schedule within ``PREEMPTION_BOUND`` preemptions
    (dfs). Returns the :class:`critsec.explorer.Result`. Main thread only;
    blocks; not reentrant (the lesson's code uses a module global)."""
    from critsec import explorer  # the explorer is not needed to run tasks

    setup = functools.partial(_explored_setup, n)
    if lock:
        tasks = [_locked_task_1, _locked_task_2]
        return explorer.explore(
            setup,
            tasks,
            _lesson_holds,
            strategy="dfs",
            preemption_bound=PREEMPTION_BOUND,
            max_schedules=10_000,
            seed=EXPLORER_SEED,
            include=LESSON_CODE,
        )
    tasks = [_lesson_task_1, _lesson_task_2]
    return explorer.explore(setup, tasks, _lesson_holds, seed=EXPLORER_SEED, include=LESSON_CODE)


def run_lesson_threads(n: int = LESSON_ITERATIONS) -> CounterResult:
    """The lesson's first cell, verbatim in spirit: a global int, two
    ``threading.Thread``, no lock. Main thread only; not reentrant (it
    uses a module global, as the lesson does)."""
    global lesson_counter
    lesson_counter = INITIAL
    thread_1 = threading.Thread(target=_lesson_task_1, args=(n,))
    thread_2 = threading.Thread(target=_lesson_task_2, args=(n,))
    start = time.perf_counter()
    thread_1.start()
    thread_2.start()
    thread_1.join()
    thread_2.join()
    return CounterResult(
        runtime="threads",
        lock=False,
        tasks=2,
        iterations=n,
        initial=INITIAL,
        expected=INITIAL - 1,
        observed=lesson_counter,
        operations=2 * n + 1,
        seconds=time.perf_counter() - start,
    )


def lesson_coroutine(lock: None, counter: Any, n: int, delta: int) -> Generator[None, None, None]:
    """The lesson's coroutine: it yields *before* each update, never inside
    one, so it needs no lock (``lock`` is always ``None``)."""
    for _ in range(n):
        yield
        counter.value += delta


def forced_interleaving() -> CounterResult:
    """Two real threads forced into the interleaving that loses an update.

    A reads the counter (10); B reads it (10) and writes 9; A writes 11
    over B's 9. Expected 10 (one +1, one -1); observed 11, every time.
    Blocks until both threads are done (at most ~30 s if one dies).
    """
    rt = critsec.runtime("threads")
    counter = rt.counter(INITIAL)
    a_has_read = threading.Event()
    b_has_written = threading.Event()

    def wait(event: threading.Event) -> None:
        if not event.wait(timeout=30):  # only if the other thread died
            raise TimeoutError("the other thread never reached its handshake")

    def task_a() -> None:
        value = counter.value  # A reads 10 ...
        a_has_read.set()
        wait(b_has_written)  # ... B reads 10 and writes 9 meanwhile ...
        counter.value = value + 1  # ... and A writes 11 over it.

    def task_b() -> None:
        wait(a_has_read)
        counter.value -= 1
        b_has_written.set()

    start = time.perf_counter()
    rt.run(critsec.task(task_a).named("A"), critsec.task(task_b).named("B"), timeout=60)
    return CounterResult(
        runtime="threads",
        lock=False,
        tasks=2,
        iterations=1,
        initial=INITIAL,
        expected=INITIAL,
        observed=counter.value,
        operations=2,
        seconds=time.perf_counter() - start,
    )


# -- judging -----------------------------------------------------------------------


def _reachable(result: CounterResult) -> bool:
    """Whether some interleaving of the tasks' updates can leave ``observed``:
    each write stores some task's read plus its delta, so the counter stays
    between the sum of all decrements and the sum of all increments."""
    plan = counter_tasks(result.tasks, result.iterations)
    low = result.initial + sum(n * d for n, d in plan if d < 0)
    high = result.initial + sum(n * d for n, d in plan if d > 0)
    return low <= result.observed <= high


def _counter_check(label: str, result: CounterResult, ok: bool | None) -> DemoCheck:
    lost = f" ({result.lost_updates:,} lost)" if result.lost_updates else ""
    observed = f"{result.observed:,}{lost}"
    return DemoCheck(label, f"{result.expected:,}", observed, result.ns_per_op, ok)


def _pipeline_check(label: str, result: PipelineResult) -> DemoCheck:
    return DemoCheck(
        label,
        f"{result.items:,} consumed, 0 lost, 0 dup, max qsize <= {result.maxsize}",
        f"{result.consumed:,} consumed, {result.lost} lost, {result.duplicated} dup, "
        f"max qsize {result.max_qsize}",
        result.seconds * 1e9 / result.items,
        result.ok,
    )


def _step1(sizes: DemoSizes) -> StepOutcome:
    n = sizes.threads
    lesson = run_lesson_threads(n)
    stress = run_counter("threads", lock=False, iterations=n)
    found = explore_lesson(sizes.explored)
    found_value = lesson_counter  # the failing schedule was the last one run
    locked = explore_lesson(sizes.explored, lock=True)
    proof = forced_interleaving()
    proved = proof.observed == INITIAL + 1 and proof.lost_updates == 1
    consistent = _reachable(lesson) and _reachable(stress)
    explored = f"{sizes.explored} updates each"
    checks = [
        _counter_check("lesson's code: global counter += 1", lesson, None),
        _counter_check("critsec: counter.value += 1", stress, None),
        DemoCheck(
            f"explorer: lesson's code, {explored}",
            "a lost update",
            f"{found_value}, in schedule {found.schedules}"
            if found.failed
            else f"none in {found.schedules:,}",
            None,  # schedules, not updates
            found.failed and found.kind == "invariant",
        ),
        DemoCheck(
            f"explorer: with the lock, {explored}",
            "no lost update",
            (
                f"none in all {locked.schedules:,}"
                if locked.exhausted
                else f"none in {locked.schedules:,}"
            )
            if not locked.failed
            else f"{locked.kind} failure",
            None,
            not locked.failed and locked.exhausted,
        ),
        DemoCheck(
            "forced: A reads, B updates, A writes",
            f"{proof.expected}",
            f"{proof.observed} ({proof.lost_updates} lost)",
            None,  # two thread start-ups and handshakes: not a cost per update
            proved,
        ),
    ]
    explorer_ok = bool(checks[2].ok and checks[3].ok)
    python = f"CPython {sys.version_info.major}.{sys.version_info.minor}"
    if lesson.lost_updates == 0:
        lesson_says = (
            f"{python} switches threads only at calls and backward jumps, never inside a global "
            "counter += 1, so the lesson's code lost nothing"
        )
    else:
        lesson_says = f"{python} switched threads inside counter += 1"
    stress_says = "counter.value += 1 calls a property (a switch point) between read and write"
    if stress.lost_updates == 0:
        stress_says += ", though no switch fell there this time"
    bound = f"{PREEMPTION_BOUND} preemption" + ("s" if PREEMPTION_BOUND != 1 else "")
    why = (
        f"{lesson_says}; {stress_says}. The explorer switches between bytecodes and finds the "
        f"interleaving that loses an update (below); with the lock, no schedule with up to "
        f"{bound} loses one; the forced interleaving loses one every time."
    )
    trace = found.trace
    if found.failed:
        trace += f"\nreplay token: {found.schedule}"
    return checks, proved and consistent and explorer_ok, why, trace


def _step2(sizes: DemoSizes) -> StepOutcome:
    result = run_counter("threads", lock=True, iterations=sizes.threads)
    why = "Only the thread holding the lock may read and write, so no update can be overwritten."
    return [_counter_check("threads, with lock", result, result.exact)], result.exact, why


def _step3(sizes: DemoSizes) -> StepOutcome:
    n = sizes.processes
    locked = run_counter("processes", lock=True, iterations=n)
    unlocked = run_counter("processes", lock=False, iterations=n)
    checks = [
        _counter_check("processes, with lock", locked, locked.exact),
        _counter_check("processes, no lock", unlocked, None),
    ]
    why = (
        "The counter lives in shared memory and processes run truly in parallel: without the "
        f"lock {unlocked.lost_updates:,} updates were lost; with it each update is exclusive, "
        "and costs more."
    )
    return checks, locked.exact and _reachable(unlocked), why


def _step4(sizes: DemoSizes) -> StepOutcome:
    n = sizes.coroutines
    rt = critsec.runtime("coroutines", order="round-robin")
    lesson = run_counter(rt, lock=False, iterations=n, worker=lesson_coroutine)
    inside = run_counter(rt, lock=False, iterations=n)
    locked = run_counter(rt, lock=True, iterations=n)
    # Round-robin: every task reads before any of them writes, so each task
    # only ever sees its own writes and the last one to write wins -- the
    # subtracting task, which runs one iteration longer.
    predicted = INITIAL - (n + 1)
    checks = [
        _counter_check("lesson: yield; counter.value += 1", lesson, lesson.exact),
        DemoCheck(
            "read; yield; write (no lock)",
            f"{predicted:,} predicted",
            f"{inside.observed:,} ({inside.lost_updates:,} lost)",
            inside.ns_per_op,
            inside.observed == predicted,
        ),
        _counter_check("the same, lock held across yield", locked, locked.exact),
    ]
    passed = all(check.ok for check in checks)
    why = (
        "Coroutines switch only at yield: with no yield inside the update no lock is needed; "
        f"with one inside, round-robin predicts that each task overwrites the others' updates "
        f"and all {n:,} increments are lost."
    )
    return checks, passed, why


def _step5(sizes: DemoSizes) -> StepOutcome:
    checks = [
        _pipeline_check(
            name,
            run_pipeline(name, producers=2, consumers=2, items=sizes.pipeline_items, maxsize=10),
        )
        for name in ("threads", "processes", "asyncio")
    ]
    why = (
        "put() waits while the queue is full and get() while it is empty -- no polling; "
        "the last producer shuts the queue down and consumers stop once it is drained."
    )
    return checks, all(check.ok for check in checks), why


def _step6(sizes: DemoSizes) -> StepOutcome:
    from . import _faults

    stdlib = _faults.holder_dies(lock="multiprocessing", patience=0.5)
    ours = _faults.holder_dies(lock="critsec", patience=PATIENCE_AFTER_DEATH)
    counted = _faults.counter_with_dying_holder(
        tasks=2, iterations=sizes.processes // 10, seed=EXPLORER_SEED
    )
    piped = _faults.pipeline_with_kills(
        items=sizes.pipeline_items, kills=2, delivery="at-least-once", seed=EXPLORER_SEED
    )
    checks = [
        DemoCheck(
            "multiprocessing.Lock, holder killed",
            "stuck for good",
            "acquired" if stdlib.acquired else "stuck (0.5 s)",
            None,
            None,
        ),
        DemoCheck(
            "critsec lock, holder killed",
            "handed on, told",
            f"after {ours.wait_ms:.1f} ms, {'told' if ours.told else 'NOT told'}"
            if ours.wait_ms is not None
            else "not acquired",
            None,
            ours.acquired and ours.told,
        ),
        DemoCheck(
            f"locked counter, a task killed at update {counted.killed_at:,}",
            f"{counted.expected:,}, told",
            f"{counted.observed:,}, {'told' if counted.told else 'NOT told'}",
            None,
            counted.ok,
        ),
        DemoCheck(
            f"pipeline, {piped.killed} consumers killed, at-least-once",
            "0 lost",
            f"{piped.lost} lost, {piped.duplicated} dup, {piped.redelivered} redelivered",
            piped.seconds * 1e9 / piped.items,
            piped.ok,
        ),
    ]
    why = (
        "critsec's lock is a robust mutex: the kernel hands it to the next acquirer, who is "
        "told (lock.owner_died) and can repair; an at-least-once queue delivers the item of "
        "a dead consumer again, announced as a redelivery."
    )
    return checks, all(check.ok for check in checks if check.ok is not None), why


#: How long step 6 lets the waiter wait for a dead holder's critsec lock: far
#: more than the hand-over takes (well under a millisecond here).
PATIENCE_AFTER_DEATH = 10.0


def demo_steps(quick: bool = False) -> list[PendingStep]:
    """The demo's steps, not yet run; ``quick`` uses smaller sizes.

    Run them in order with ``step.run()`` from the main thread (step 1
    uses a module global, as the lesson does).
    """
    sizes = QUICK if quick else FULL

    def bind(body: Callable[[DemoSizes], StepOutcome]) -> Callable[[], StepOutcome]:
        return functools.partial(body, sizes)

    def updates(n: int) -> str:
        return f"{n:,} updates each (the subtracting one: one more)"

    return [
        PendingStep(
            1,
            "Threads without a lock",
            "Two threads updating a counter without mutual exclusion lose updates "
            "(the lesson printed counter = -99559 instead of 9).",
            f"2 threads, {updates(sizes.threads)}; the explorer on the same code, "
            f"{sizes.explored} updates each, without and with a lock; 2 threads forced into "
            "one interleaving.",
            bind(_step1),
        ),
        PendingStep(
            2,
            "Threads with a lock",
            "With a lock around the update the result is exact: counter = 9.",
            f"2 threads, {updates(sizes.threads)}, each update under the lock.",
            bind(_step2),
        ),
        PendingStep(
            3,
            "Processes with a lock",
            "Processes sharing a counter, each update under a lock, end exact: counter = 9.",
            f"2 processes, {updates(sizes.processes)}, with and without the lock.",
            bind(_step3),
        ),
        PendingStep(
            4,
            "Coroutines",
            "Coroutines switch only where they yield, so the lesson's coroutines need no lock.",
            f"2 generator tasks, round-robin, {updates(sizes.coroutines)}.",
            bind(_step4),
        ),
        PendingStep(
            5,
            "Producers and consumers through a bounded queue",
            "A bounded queue (queue_length = 10) synchronises producers and consumers: "
            "every item is consumed exactly once.",
            f"2 producers put {sizes.pipeline_items:,} numbered items into a queue of maxsize 10, "
            "2 consumers take them; ns/op is per item.",
            bind(_step5),
        ),
        PendingStep(
            6,
            "When a task dies inside the critical section",
            "(Not in the lesson.) A process killed while holding a lock leaves "
            "multiprocessing.Lock locked for good; critsec's lock is handed on, and its "
            "queue loses nothing.",
            "a holder SIGKILLed holding multiprocessing.Lock, then critsec's lock; the locked "
            f"counter with one of 2 processes killed mid-update ({sizes.processes // 10:,} "
            f"updates each); the pipeline of step 5 with 2 consumers SIGKILLed.",
            bind(_step6),
        ),
    ]
