"""The one chokepoint every switch between tasks passes through.

Design
------
The explorer runs a program's tasks so that exactly one runs at a time and
*every* point where another task could have run instead is a decision:
``Scheduler.branch(runnable, current)``. Drivers (real threads stopped at
bytecode boundaries, generator tasks at ``yield``, asyncio tasks at each
ready callback) do the mechanics of suspending and resuming; the
scheduler only decides, and records each decision. That split is loom's
(``rt::branch``): one place to count steps, enforce limits, and write down
the schedule so it can be replayed exactly.

A *schedule* is the list of choices made where more than one task was
runnable (forced moves are not recorded: they are the same on replay).
Strategies differ only in how they choose:

* ``random``: uniformly among the runnable tasks;
* ``pct``: probabilistic concurrency testing (Burckhardt, Kothari,
  Musuvathi, Nagarakatte, ASPLOS 2010): random task priorities, always run
  the highest-priority runnable task, and lower the running task's priority
  at ``depth - 1`` random change points. A bug of depth *d* among *n* tasks
  and *k* steps is found with probability at least 1/(n k^(d-1)) per
  schedule -- far better than random for bugs that need a few precise
  preemptions;
* ``dfs``: every schedule, depth first, optionally bounded by the number
  of preemptions (switching away from a task that could have continued,
  CHESS's bound). When the tree is exhausted the result says so: a pass is
  then a proof, within the bound. With partial-order reduction (thread
  tasks; :mod:`._dpor`) every fourth schedule starts instead from the
  reversal nearest the start, so a bug that needs one early preemption is
  not left behind every reordering below it.

All randomness flows from one ``random.Random(seed)``: the same seed gives
the same schedules.
"""

from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import CritsecError

if TYPE_CHECKING:
    from ._dpor import Footprint

__all__ = [
    "LIVELOCK_SPINS",
    "STRATEGIES",
    "DFSStrategy",
    "ExplorationLimit",
    "PCTStrategy",
    "RandomStrategy",
    "ReplayMismatch",
    "ReplayStrategy",
    "Scheduler",
    "Strategy",
    "decode_schedule",
    "encode_schedule",
    "make_strategy",
]


class ExplorationLimit(CritsecError):
    """One schedule took more steps than allowed (``max_steps``)."""


class ReplayMismatch(CritsecError):
    """A replay token does not fit the program: at some step the recorded
    task was not runnable, or the program asked for more decisions than the
    token holds. The program (or its Python) changed since the token was made."""


# -- strategies ----------------------------------------------------------------


class Strategy:
    """How to choose among runnable tasks. One instance serves a whole
    exploration: ``begin`` before each schedule, ``choose`` at each decision,
    ``end`` after; ``end`` returns False when there is nothing left to try."""

    name = ""
    #: Whether it wants every step (``stepped``) and their footprints
    #: (``Scheduler.trail``, passed to ``end``): partial-order reduction does.
    observes_steps = False

    def begin(self, rng: random.Random) -> None:
        self.rng = rng

    def cast(self, roles: Sequence[int]) -> None:
        """Once, before the first schedule: ``roles[i]`` is task *i*'s role,
        the same for tasks that run the same callable (``task_roles``)."""

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        raise NotImplementedError

    def observe(self, scheduler: Scheduler) -> None:
        """The scheduler of the schedule about to run (if ``observes_steps``):
        its ``trail``, and its ``pending`` steps."""

    def stepped(self, runnable: Sequence[int], current: int | None, choice: int) -> None:
        """Every step, forced moves too (if ``observes_steps``)."""

    def end(self, steps: int, trail: Sequence[Footprint] = ()) -> bool:
        return True

    def yielded(self, task: int) -> None:
        """``task`` went round a loop without progress (see
        :meth:`Scheduler.spun`); the next decision does not pick it if
        another task can run. A strategy with priorities lowers its own."""

    @property
    def exhausted(self) -> bool:
        """True once every schedule (within the bound) was tried."""
        return False


class RandomStrategy(Strategy):
    name = "random"

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        return self.rng.choice(runnable)


class _Prioritised(Strategy):
    """A strategy that runs the runnable task of highest priority."""

    def begin(self, rng: random.Random) -> None:
        super().begin(rng)
        self.priority: dict[int, float] = {}

    def yielded(self, task: int) -> None:
        # Below every other task, as CHESS's fair scheduler does with a
        # thread that yields: the others run until they block, finish or
        # spin in turn. Left on top, a spinner would keep the CPU until the
        # step limit (a change of priority only moves it a little down).
        lowest = min(self.priority.values(), default=0.0)
        self.priority[task] = min(lowest, 0.0) - 1


class PCTStrategy(_Prioritised):
    """PCT with bug depth ``depth``: a bug of depth *d* needs *d - 1* well
    placed preemptions. ``depth`` may also be a sequence of depths, taken in
    turn, one per schedule: the default (3, 4, 5) finds the common one- and
    two-preemption bugs nearly as fast as depth 3 alone and does not miss
    bugs that need three or four (measured on benchmarks/programs: depth 3
    alone never finds ``three_preemptions``).

    Tasks that run the same callable share a role (:meth:`cast`). When some
    do, every other schedule is drawn over roles instead of tasks: initial
    priorities role first, and change points at a role's own j-th decision.
    Among 100 identical writers and one reader, a uniform draw puts the
    reader second in priority once in 100 schedules and a change point in
    the first writer's few steps between its two stages a few times in
    1,000: SCTBench's TwoStage_100 took about 10,000 schedules; drawn by
    role, a median of 28 (``benchmarks/README.md``). The other schedules
    keep PCT's uniform draw and its probabilistic bound, at half the rate."""

    name = "pct"

    def __init__(self, depth: int | Sequence[int] = (3, 4, 5)) -> None:
        depths = (depth,) if isinstance(depth, int) else tuple(depth)
        if not depths or any(not isinstance(d, int) or d < 1 for d in depths):
            raise ValueError(f"pct depth must be an int >= 1 or a sequence of them, got {depth!r}")
        self.depths = depths
        self.depth = depths[0]
        self.schedule = 0
        # k, the schedule length change points are drawn from: the most
        # decisions any schedule made so far. A fixed guess too large puts
        # change points past the end of small programs, which then never
        # see a preemption.
        self.expected_steps = 1
        self.roles: tuple[int, ...] = ()
        self.shared = False  # some tasks share a role
        #: The most decisions after a step of one role's task, by role.
        self.role_steps: dict[int, int] = {}

    def cast(self, roles: Sequence[int]) -> None:
        self.roles = tuple(roles)
        self.shared = len(set(roles)) < len(roles)

    def begin(self, rng: random.Random) -> None:
        super().begin(rng)
        self.depth = self.depths[self.schedule % len(self.depths)]
        self.schedule += 1
        self.step = 0
        # Change points: at the k-th decision (drawn over tasks), or at a
        # role's own j-th decision (over roles); ``fired`` ranks the latter.
        self.change_points: dict[int, int] = {}
        self.role_points: set[tuple[int, int]] = set()
        self.own_steps: dict[int, int] = {}
        self.fired = 0
        if self.shared and self.schedule % 2 == 0:
            self._draw_by_role(rng)
            return
        k = self.expected_steps
        points = sorted(rng.sample(range(1, k + 1), min(self.depth - 1, k)))
        self.change_points = {point: rank for rank, point in enumerate(points)}

    def _role(self, task: int) -> int:
        # A task started by a task is a role of its own.
        return self.roles[task] if task < len(self.roles) else task

    def _draw_by_role(self, rng: random.Random) -> None:
        # Priorities from the top down: a role at random among those with a
        # task left, then one of its tasks. Change points: a role at random
        # and a count of its own decisions (the j-th decision after a task
        # of it ran); the first task of the role to get there is preempted.
        members: dict[int, list[int]] = {}
        for task, role in enumerate(self.roles):
            members.setdefault(role, []).append(task)
        left = list(members.values())
        for tasks in left:
            rng.shuffle(tasks)
        n = len(self.roles)
        for rank in range(n):
            tasks = rng.choice(left)
            # Above every change-point priority, as the uniform draw's.
            self.priority[tasks.pop()] = self.depth + 1 - rank / n
            if not tasks:
                left.remove(tasks)
        roles = list(members)
        for _ in range(self.depth - 1):
            role = rng.choice(roles)
            self.role_points.add((role, rng.randint(1, self.role_steps.get(role, 1))))

    def _priority(self, task: int) -> float:
        if task not in self.priority:
            # Initial priorities sit above every change-point priority.
            self.priority[task] = self.depth + self.rng.random()
        return self.priority[task]

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        self.step += 1
        rank = self.change_points.get(self.step)
        if self.shared and current is not None:
            own = self.own_steps[current] = self.own_steps.get(current, 0) + 1
            point = (self._role(current), own)
            if point in self.role_points:
                self.role_points.remove(point)
                rank, self.fired = self.fired, self.fired + 1
        priority = self.priority
        if rank is not None and current is not None:
            self._priority(current)
            # The i-th change point drops the running task to priority d-1-i.
            priority[current] = self.depth - 1 - rank
        for task in runnable:
            if task not in priority:
                self._priority(task)
        return max(runnable, key=priority.__getitem__)

    def end(self, steps: int, trail: Sequence[Footprint] = ()) -> bool:
        self.expected_steps = max(self.expected_steps, self.step)
        for task, own in self.own_steps.items():
            role = self._role(task)
            self.role_steps[role] = max(self.role_steps.get(role, 1), own)
        return True


class POSStrategy(_Prioritised):
    """Partial-order sampling (Yuan, Yang and Gu, "Partial order aware
    concurrency sampling", CAV 2018), in its basic form: every step gets a
    fresh random priority, and the runnable task whose next step has the
    highest runs. A random walk picks a task afresh at every step, so a
    task that must run many steps in a row among many others (a reader
    slipping between two stages of one of 100 writers) almost never does;
    here a task keeps the priority of its next step while the others run,
    so such runs are far likelier (``benchmarks/README.md``: SCTBench's
    TwoStage_100). No priority reset on races: footprints are known once a
    step has run, and POS resets the pending ones."""

    name = "pos"

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        priority = self.priority
        for task in runnable:
            if task not in priority:
                priority[task] = self.rng.random()
        choice = max(runnable, key=priority.__getitem__)
        priority[choice] = self.rng.random()  # its next step's
        return choice


@dataclass
class _Node:
    runnable: tuple[int, ...]
    current: int | None
    preemptions: int  # before this decision
    tried: list[int] = field(default_factory=list)


class Decision(Protocol):
    """A state of a depth-first search: who could run, who ran last, the
    preemptions before it."""

    @property
    def runnable(self) -> tuple[int, ...]: ...
    @property
    def current(self) -> int | None: ...
    @property
    def preemptions(self) -> int: ...
    @property
    def tried(self) -> list[int]: ...


class BoundedSearch(Strategy):
    """What ``dfs`` shares with and without reduction: a depth-first
    search that replays a prefix of choices, bounded by the number of
    preemptions (switching away from a task that could go on)."""

    name = "dfs"

    def __init__(self, preemption_bound: int | None = None) -> None:
        if preemption_bound is not None and preemption_bound < 0:
            raise ValueError(f"preemption_bound must be >= 0, got {preemption_bound}")
        self.bound = preemption_bound
        self.prefix: list[int] = []  # choices to replay before branching anew
        self.done = False

    def begin(self, rng: random.Random) -> None:
        super().begin(rng)
        self.depth = 0
        self.preemptions = 0

    @staticmethod
    def _preempts(choice: int, current: int | None, runnable: Sequence[int]) -> bool:
        return current is not None and current in runnable and choice != current

    def _allowed(self, node: Decision, choice: int) -> bool:
        """Whether ``choice`` at ``node`` keeps the schedule within the bound."""
        extra = 1 if self._preempts(choice, node.current, node.runnable) else 0
        return self.bound is None or node.preemptions + extra <= self.bound

    def _options(self, node: Decision) -> Iterable[int]:
        """The tasks a search may try at ``node``, in order."""
        return node.runnable

    def _backtrack(self, path: list[Any]) -> bool:
        """Set the prefix of the next schedule: the deepest node of ``path``
        with an option not tried yet (within the bound) gets it, the nodes
        below it are dropped. False, and exhausted, when none is left."""
        while path:
            node = path[-1]
            untried = [
                t for t in self._options(node) if t not in node.tried and self._allowed(node, t)
            ]
            if untried:
                node.tried.append(untried[0])
                self.prefix = [n.tried[-1] for n in path]
                return True
            path.pop()
        self.done = True
        return False

    @property
    def exhausted(self) -> bool:
        return self.done


def not_deterministic(before: tuple[int, ...], now: Sequence[int]) -> ReplayMismatch:
    return ReplayMismatch(
        "the program is not deterministic: the same schedule prefix reached a "
        f"different set of runnable tasks ({before} then {tuple(now)}); "
        "dfs needs tasks whose only nondeterminism is the schedule"
    )


class DFSStrategy(BoundedSearch):
    """Every schedule, depth first. ``preemption_bound`` (None: no bound)
    limits how often a schedule may switch away from a task that could go on."""

    def __init__(self, preemption_bound: int | None = None) -> None:
        super().__init__(preemption_bound)
        self.path: list[_Node] = []

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        if self.depth < len(self.prefix):
            choice = self.prefix[self.depth]
            node = self.path[self.depth]
            if tuple(runnable) != node.runnable:
                raise not_deterministic(node.runnable, runnable)
        else:
            # New territory: keep running the current task if it can (no preemption).
            choice = current if current is not None and current in runnable else min(runnable)
            node = _Node(tuple(runnable), current, self.preemptions)
            node.tried.append(choice)
            self.path.append(node)
        if self._preempts(choice, current, runnable):
            self.preemptions += 1
        self.depth += 1
        return choice

    def end(self, steps: int, trail: Sequence[Footprint] = ()) -> bool:
        del self.path[self.depth :]  # decisions past a failure are not ours to revisit
        return self._backtrack(self.path)


class ReplayStrategy(Strategy):
    """Makes exactly the recorded choices."""

    name = "replay"

    def __init__(self, choices: Sequence[int]) -> None:
        self.choices = list(choices)

    def begin(self, rng: random.Random) -> None:
        super().begin(rng)
        self.at = 0

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        if self.at >= len(self.choices):
            raise ReplayMismatch(
                f"the schedule ends after {len(self.choices)} decisions but the program "
                "asks for more: it changed since the token was made"
            )
        choice = self.choices[self.at]
        if choice not in runnable:
            raise ReplayMismatch(
                f"decision {self.at + 1}: the schedule runs task {choice}, but only "
                f"{list(runnable)} can run: the program changed since the token was made"
            )
        self.at += 1
        return choice


STRATEGIES = ("random", "pct", "dfs", "pos")


def make_strategy(
    name: str,
    *,
    preemption_bound: int | None = None,
    depth: int | Sequence[int] = (3, 4, 5),
    reduction: bool = False,
) -> Strategy:
    """``reduction``: ``dfs`` with partial-order reduction (for a driver
    that describes its steps' footprints)."""
    if name == "random":
        return RandomStrategy()
    if name == "pos":
        return POSStrategy()
    if name == "pct":
        return PCTStrategy(depth)
    if name == "dfs":
        if reduction:
            from ._dpor import DPORStrategy

            return DPORStrategy(preemption_bound)
        return DFSStrategy(preemption_bound)
    raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")


# -- the scheduler -------------------------------------------------------------


#: Rounds of spin-waiting in a row, with no task making progress in
#: between, after which a schedule is a livelock (see ``Scheduler.spun``).
LIVELOCK_SPINS = 1_000


class Scheduler:
    """Decides, at every switch point of one schedule, which task runs next.

    ``branch`` is the only place a decision is made; drivers call it with
    the tasks that can run now and the one that ran last. Forced moves (one
    runnable task) are not recorded. ``max_steps`` bounds one schedule.

    Fairness (Musuvathi and Qadeer, "Fair stateless model checking", PLDI
    2008): a driver calls ``spun(task)`` when a task went round a loop and
    came back to where it was -- the same loop, its locals the same objects,
    the same reads, writes and calls as the round before: it is waiting by
    spinning. The next decision then does not pick it while another task
    can run (and switching away is no preemption), so a spin-wait cannot
    starve the task it waits for in any strategy, and a strategy with
    priorities lowers the spinner's. ``progressed()`` says some task did
    something else; ``LIVELOCK_SPINS`` spins with none is a livelock.
    """

    def __init__(
        self, strategy: Strategy, max_steps: int = 100_000, deadline: float | None = None
    ) -> None:
        self.strategy = strategy
        self.max_steps = max_steps
        #: When the search must end (``time.monotonic()``), for the drivers'
        #: watchdogs; None: no timeout.
        self.deadline = deadline
        self.steps = 0
        self.choices: list[int] = []
        self.spinner: int | None = None  # spun since the last decision
        self.idle_spins = 0
        #: What each step touched, for a strategy that reduces (else None):
        #: the driver describes the step under way (``declare``).
        self.trail: list[Footprint] | None = None
        #: For a strategy that reduces, the driver may also say what a task
        #: that waits at a switch point would touch in its next step (None:
        #: it cannot say); partial-order reduction keeps such a task asleep
        #: while the steps taken touch nothing of it (sleep sets).
        self.pending: Callable[[int], Footprint | None] | None = None
        if strategy.observes_steps:
            from ._dpor import Footprint  # (which imports this module)

            self.trail, self._footprint = [], Footprint
            strategy.observe(self)

    def spun(self, task: int) -> bool:
        """Driver: ``task`` spins (see above). True once it is a livelock."""
        self.spinner = task
        self.strategy.yielded(task)
        self.idle_spins += 1
        return self.idle_spins >= LIVELOCK_SPINS

    def progressed(self) -> None:
        """Driver: a task made progress (not a spin): no livelock yet."""
        self.idle_spins = 0

    def declare(
        self,
        reads: Iterable[Hashable] = (),
        writes: Iterable[Hashable] = (),
        reads_all: bool = False,
    ) -> None:
        """Driver: the step under way touches only these places (and, with
        ``reads_all``, may read anything). Unsaid, a step may touch anything."""
        if self.trail:
            step = self.trail[-1]
            step.opaque, step.reads_all = False, reads_all
            step.reads.update(reads)
            step.writes.update(writes)

    def declare_opaque(self) -> None:
        """Driver: the step under way may touch anything after all."""
        if self.trail:
            self.trail[-1].opaque = True

    def branch(self, runnable: Sequence[int], current: int | None, continues: bool = False) -> int:
        """Who runs next, of ``runnable``; ``current`` ran last. ``continues``:
        no switch point, only a step counted -- ``current`` goes on, and for
        the trail its step goes on too."""
        if not runnable:
            raise ValueError("branch() needs at least one runnable task")
        if self.spinner is not None:
            spinner, self.spinner = self.spinner, None
            if len(runnable) > 1 and spinner in runnable:
                runnable = [t for t in runnable if t != spinner]
        self.steps += 1
        if self.steps > self.max_steps:
            raise ExplorationLimit(
                f"one schedule exceeded {self.max_steps} steps: a task loops without end, "
                "changing something every round (a task spinning on a flag that does not "
                "change is scheduled fairly, and reported as a livelock when nothing can "
                "change it), or the program is long: then raise the limit (max_steps=, "
                "--max-steps on the command line)"
            )
        if len(runnable) == 1:
            choice = runnable[0]
        else:
            choice = self.strategy.choose(runnable, current)
            self.choices.append(choice)
        if self.trail is not None and not continues:
            self.strategy.stepped(runnable, current, choice)
            self.trail.append(self._footprint())
        return choice


# -- replay tokens ---------------------------------------------------------------

_TOKEN_PREFIX = "cs1-"


def encode_schedule(choices: Sequence[int]) -> str:
    """A short printable token for a schedule (run-length coded, compressed)."""
    runs: list[int] = []
    for choice in choices:
        if runs and runs[-2] == choice:
            runs[-1] += 1
        else:
            runs += [choice, 1]
    raw = bytearray()
    for number in runs:  # unsigned LEB128 varints
        while True:
            byte, number = number & 0x7F, number >> 7
            raw.append(byte | (0x80 if number else 0))
            if not number:
                break
    packed = base64.urlsafe_b64encode(zlib.compress(bytes(raw), 9)).decode().rstrip("=")
    return _TOKEN_PREFIX + packed


def decode_schedule(token: str) -> list[int]:
    """The choices a token holds; ``ValueError`` for anything that is not one."""
    if not isinstance(token, str) or not token.startswith(_TOKEN_PREFIX):
        raise ValueError(f"not a critsec schedule token (they start with {_TOKEN_PREFIX!r})")
    body = token[len(_TOKEN_PREFIX) :]
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"damaged schedule token: {exc}") from None
    numbers, number, shift = [], 0, 0
    for byte in raw:
        number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            numbers.append(number)
            number, shift = 0, 0
    if shift or len(numbers) % 2:
        raise ValueError("damaged schedule token: truncated")
    choices: list[int] = []
    for task, count in zip(numbers[::2], numbers[1::2], strict=True):
        choices += [task] * count
    return choices
