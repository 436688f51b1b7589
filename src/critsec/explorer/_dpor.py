"""Partial-order reduction for ``dfs``: try one order of independent steps.

Design
------
Two steps of different tasks that touch nothing in common -- or only read
the same thing -- give the same state whichever runs first. Plain ``dfs``
tries both orders anyway; with a few tasks of a few dozen steps that is
most of its schedules (the locked lesson, bound 3: 7,434). Dynamic
partial-order reduction (Flanagan and Godefroid, POPL 2005) runs one
schedule, looks back at which steps of different tasks *raced* -- touched
the same place, one of them writing, with nothing ordering them -- and
schedules a reversal only for those: at the state before the earlier
step, a task that can start the reversed order is added to that state's
*backtrack set*, unless one is there already (source sets, Abdulla,
Aronis, Jonsson and Sagonas, POPL 2014; every task that could run there
when none of them can). A search that has emptied every backtrack set has
tried every order of dependent steps: every outcome plain ``dfs`` can
reach, it reached (``tests/test_explore_dpor.py`` checks that against
plain ``dfs`` on random programs).

Races are found after each schedule with vector clocks (happens-before:
program order plus the order of dependent steps), and the steps indexed
by the places they touched, so that a step's dependencies are a few
lookups. A step of another task that a step depends on is a race unless
it is ordered before the task's previous step, or before a later step of
a *third* task that this step also depends on (it is then ordered through
that one). A task's own later steps do not hide its earlier ones: the
latest may be a lock's release, which no schedule can put after the
acquire that waited for it, while the acquire before it can be
reordered. (Counting every dependent step not ordered before the task's
previous step, as this did first, gave the same searches but 10,000 races
a schedule with 101 threads, 0.7 s of analysis; now 300 and 20 ms.)

**Sleep sets** (Godefroid; source-DPOR keeps them too): a task whose
step was tried from some state is asleep in the schedules that take
another task there, until a step it depends on is taken -- running it
earlier would only reorder independent steps. So a reversal that leads
back to an order already tried is not tried again (the random programs:
18,443 schedules without, 8,727 with; the three-philosopher proof with no
bound, 791 without, 53 with). What a waiting task's next step touches
comes from the current schedule (``Scheduler.pending``: the threads
driver works it out from the task's frame, as it will once the task
runs), so no place has to be named across schedules, where an object's
id changes. Without that, or with a preemption bound, no task sleeps.

**With a preemption bound** the reduction alone would be unsound: the one
order it keeps of two independent steps may need more preemptions than
another order within the bound (Coons, Musuvathi and McKinley, "Bounded
partial-order reduction", OOPSLA 2013). As they do -- and as dejafu does
-- each backtrack point is also added at the latest context switch before
it, where switching costs no preemption.

**What a step touches** (its :class:`Footprint`) is the driver's to say,
conservatively: a step it cannot describe is *opaque* -- it may read and
write anything -- and depends on every step that touches anything. The
threads driver describes the instruction a step starts at (see
:mod:`._footprints`): loads and stores of globals, closure variables,
plain attributes and items of lists and dicts, a controlled lock's
operations, an operator or an iteration (taken to read anything); calls
into C or a library are opaque. A driver that describes nothing gets a
correct search with little reduction.

Places may be *parts* of a whole (:func:`whole`): an attribute or an item
of one object. A whole overlaps its parts, so ``list.append`` depends on
a read of an item, but two attributes of one object do not depend on
each other -- which lets the many programs that keep all their state on
one object be reduced at all. And two stores of the very same object in
one place commute (``Footprint.values``): ten tasks that each set
``s.a = 1`` are ten independent steps, not 10! orders to try.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._scheduler import BoundedSearch, Scheduler, not_deterministic

__all__ = ["DPORStrategy", "Footprint", "dependent", "whole"]


@dataclass(slots=True)
class Footprint:
    """What one step may touch. ``opaque``: anything (the default, until
    the driver says better); ``reads_all``: it may read anything.
    ``values``: for some places it writes, the object it stored there, once
    known -- two steps storing the very same object in one place leave the
    same state in either order, so they do not depend on each other there."""

    reads: set[Hashable] = field(default_factory=set)
    writes: set[Hashable] = field(default_factory=set)
    reads_all: bool = False
    opaque: bool = True
    values: dict[Hashable, Any] | None = None

    def empty(self) -> bool:
        return not (self.opaque or self.reads_all or self.reads or self.writes)

    def stored(self, place: Hashable) -> Any:
        """The object this step stored in ``place``; ``_UNKNOWN`` if not known."""
        return _UNKNOWN if self.values is None else self.values.get(place, _UNKNOWN)


_UNKNOWN: Any = object()


def whole(place: Hashable) -> Hashable | None:
    """The place a *part* place belongs to -- an attribute or item
    ``("obj", id, key)`` is part of its object ``("obj", id)`` -- or None
    for a place that is no part. A whole overlaps each of its parts (a
    ``list.append`` writes every item; iterating reads them all); two
    parts of one whole overlap only if they are equal."""
    if type(place) is tuple and len(place) == 3 and place[0] == "obj":
        return place[:2]
    return None


def _overlap(a: Hashable, b: Hashable) -> bool:
    return a == b or whole(a) == b or whole(b) == a


def _clash(a: Footprint, b: Footprint) -> bool:
    """Whether something ``a`` writes overlaps what ``b`` reads or writes
    (not a store of the same object in the same place by both)."""
    for place in a.writes:
        if any(_overlap(place, other) for other in b.reads):
            return True
        for other in b.writes:
            if _overlap(place, other):
                stored = a.stored(place)
                if place != other or stored is _UNKNOWN or stored is not b.stored(place):
                    return True
    return False


def dependent(a: Footprint, b: Footprint) -> bool:
    """Whether the order of two steps with these footprints may matter."""
    if a.empty() or b.empty():
        return False
    if a.opaque or b.opaque:
        return True
    if (a.reads_all and b.writes) or (b.reads_all and a.writes):
        return True
    return _clash(a, b) or _clash(b, a)


class _Index:
    """The steps of one schedule so far, by what they touched: who
    depends on a new step is then a few lookups, not a scan of them all."""

    def __init__(self) -> None:
        self.readers: dict[Hashable, list[int]] = {}
        self.writers: dict[Hashable, list[int]] = {}
        # By whole: the steps that read or write some part of it.
        self.part_readers: dict[Hashable, list[int]] = {}
        self.part_writers: dict[Hashable, list[int]] = {}
        self.writing: list[int] = []  # steps that write something (or may)
        self.opaque: list[int] = []  # steps that may touch anything
        self.reading_all: list[int] = []  # steps that may read anything
        self.all: list[int] = []
        self.steps: dict[int, Footprint] = {}

    def add(self, i: int, step: Footprint) -> None:
        """Index step ``i`` (not an empty one)."""
        self.all.append(i)
        self.steps[i] = step
        if step.opaque:
            self.opaque.append(i)
        elif step.reads_all:
            self.reading_all.append(i)
        if step.opaque or step.writes:
            self.writing.append(i)
        for places, parts, place_set in (
            (self.readers, self.part_readers, step.reads),
            (self.writers, self.part_writers, step.writes),
        ):
            for place in place_set:
                places.setdefault(place, []).append(i)
                of = whole(place)
                if of is not None:
                    parts.setdefault(of, []).append(i)

    def dependencies(self, step: Footprint) -> list[int]:
        """The earlier steps ``step`` depends on (:func:`dependent`), latest first."""
        if step.opaque:
            return self.all[::-1]
        found = set(self.opaque)
        if step.writes:
            found.update(self.reading_all)
        if step.reads_all:
            found.update(self.writing)
        for place in step.reads:
            found.update(self.writers.get(place, ()))
            of = whole(place)
            if of is None:
                found.update(self.part_writers.get(place, ()))
            else:
                found.update(self.writers.get(of, ()))
        for place in step.writes:
            stored = step.stored(place)
            for j in self.writers.get(place, ()):
                if stored is _UNKNOWN or self.steps[j].stored(place) is not stored:
                    found.add(j)
            found.update(self.readers.get(place, ()))
            of = whole(place)
            if of is None:
                found.update(self.part_writers.get(place, ()))
                found.update(self.part_readers.get(place, ()))
            else:
                found.update(self.writers.get(of, ()))
                found.update(self.readers.get(of, ()))
        return sorted(found, reverse=True)


@dataclass(slots=True, eq=False)
class _Node:
    """The state before one step: who could run, who ran before, the
    preemptions so far; the tasks to try here (``backtrack``) and those
    tried. Nodes make a tree: ``parent``, and ``via``, the task whose step
    led here from it (the path to a node is the prefix that replays it)."""

    runnable: tuple[int, ...]
    current: int | None
    preemptions: int
    backtrack: set[int]
    tried: list[int]
    parent: _Node | None
    via: int
    depth: int
    #: Tasks asleep here: their next step was tried from an earlier state
    #: of this path, and nothing since touched what it touches.
    sleep: frozenset[int] = frozenset()


class DPORStrategy(BoundedSearch):
    """``dfs`` with dynamic partial-order reduction: every schedule that is
    not the reordering of independent steps of one already tried; within
    ``preemption_bound`` preemptions if given. Needs the steps' footprints
    (``Scheduler.trail``); see the module note.

    Which reversal next: mostly the deepest, as depth first does; every
    ``SHALLOW_EVERY``-th schedule, the one nearest the start. A race is
    reversed at the state before its first step, and a bug that needs one
    early preemption -- a checker slipping in between a setter's two
    writes, with ten setters after it (``reorder_10``) -- is such a
    reversal near the root, which depth first reaches only once it has
    tried every reordering below it: thousands of schedules. A bug in a
    late loop iteration is a reversal deep down, which nearest-the-start
    first reaches last (``late_iteration``: not in 5,000). Any order is
    as complete, as long as a node still to try keeps the path that leads
    to it: the tree of such nodes is kept (by ``parent``: a node that
    nothing is left to try under is dropped with its last reference), and
    reversals found later land on its shared nodes."""

    observes_steps = True
    #: One schedule in this many starts at the node nearest the start.
    SHALLOW_EVERY = 4

    def __init__(self, preemption_bound: int | None = None) -> None:
        super().__init__(preemption_bound)
        self.path: list[_Node] = []  # this schedule's nodes
        self.taken: list[int] = []  # this schedule's tasks, step by step
        # The nodes given a task to try, twice: (depth, order, node) and
        # (-depth, -order, node), heaps: the nearest the start first, and
        # the deepest.
        self._open: tuple[list[tuple[int, int, _Node]], ...] = ([], [])
        self._order = 0
        self._schedules = 0
        self._deep = True  # this schedule's node was the deepest
        self._dfs_path: list[_Node] = []  # the last such schedule's path
        self._compacted = 4096  # heap size after the last compaction (or at least)
        self.scheduler: Scheduler | None = None
        self._sleep: tuple[int, frozenset[int]] = (-1, frozenset())  # (depth, sleep set)

    def observe(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def begin(self, rng: random.Random) -> None:
        super().begin(rng)
        self.taken = []
        self._sleep = (-1, frozenset())

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        if self.depth < len(self.prefix):
            return self.prefix[self.depth]
        # New territory: keep running the current task if it can, unless it
        # sleeps.
        sleep = self._asleep()
        awake = [t for t in runnable if t not in sleep]
        if not awake:  # every schedule from here was tried: wake them all
            self._sleep, awake = (self.depth, frozenset()), list(runnable)
        return current if current is not None and current in awake else min(awake)

    def _asleep(self) -> frozenset[int]:
        """The sleep set of the state before step ``depth`` (Godefroid's
        sleep sets, as source-DPOR uses them): the tasks asleep at the state
        before, and those tried there before the task taken, whose next
        step the step taken does not touch. What such a task does next was
        tried from that state; doing it after this step gives the same
        state, so the search does not try it here either, until a step it
        depends on is taken. Only without a preemption bound (the order
        tried before may need more preemptions: Coons et al. OOPSLA 2013),
        and only when the driver says what a waiting task's next step
        touches (``Scheduler.pending``)."""
        depth = self.depth
        if depth < len(self.path):
            return self.path[depth].sleep
        if self._sleep[0] == depth:
            return self._sleep[1]
        sleep: frozenset[int] = frozenset()
        scheduler = self.scheduler
        if (
            depth > 0
            and self.bound is None
            and scheduler is not None
            and scheduler.pending is not None
            and scheduler.trail
        ):
            node, taken = self.path[depth - 1], self.taken[depth - 1]
            step = scheduler.trail[depth - 1]
            before = node.tried[: node.tried.index(taken)]
            kept = set()
            for task in node.sleep.union(before):
                if task != taken:
                    pending = scheduler.pending(task)
                    if pending is not None and not dependent(pending, step):
                        kept.add(task)
            sleep = frozenset(kept)
        self._sleep = (depth, sleep)
        return sleep

    def stepped(self, runnable: Sequence[int], current: int | None, choice: int) -> None:
        """Every step, decisions and forced moves alike (after ``choose``)."""
        if self.depth < len(self.path):
            node = self.path[self.depth]
            if tuple(runnable) != node.runnable or self.prefix[self.depth] != choice:
                raise not_deterministic(node.runnable, runnable)
        else:
            parent = self.path[-1] if self.path else None
            via = self.taken[-1] if self.taken else -1
            node = _Node(
                tuple(runnable), current, self.preemptions, {choice}, [choice],
                parent, via, self.depth, self._asleep(),
            )  # fmt: skip
            self.path.append(node)
        self.taken.append(choice)
        if self._preempts(choice, current, runnable):
            self.preemptions += 1
        self.depth += 1

    def end(self, steps: int, trail: Sequence[Footprint] = ()) -> bool:
        del self.path[self.depth :]  # past a failure: not ours to revisit
        self._add_backtracks(trail)
        if self._deep:
            self._dfs_path = self.path
        return self._next()

    def _untried(self, node: _Node) -> list[int]:
        return [
            t
            for t in sorted(node.backtrack)
            if t not in node.tried and t not in node.sleep and self._allowed(node, t)
        ]

    def _mark(self, node: _Node) -> None:
        """``node`` got a task to try: keep it (and its path) for later."""
        self._order += 1
        heapq.heappush(self._open[0], (node.depth, self._order, node))
        heapq.heappush(self._open[1], (-node.depth, -self._order, node))

    def _next(self) -> bool:
        """Set the prefix of the next schedule. Mostly depth first: the
        deepest node with a task to try on the path of the last such
        schedule (else anywhere); every ``SHALLOW_EVERY``-th, the one
        nearest the start. False, and exhausted, when none is left."""
        self._schedules += 1
        if len(self._open[0]) > self._compacted * 2:
            self._compact()
        self._deep = self._schedules % self.SHALLOW_EVERY != 0
        if self._deep:
            for node in reversed(self._dfs_path):
                if untried := self._untried(node):
                    return self._take(node, untried[0])
        heap = self._open[self._deep]
        while heap:
            node = heap[0][2]
            if untried := self._untried(node):
                return self._take(node, untried[0])
            heapq.heappop(heap)
        self.path = self._dfs_path = []
        self.done = True
        return False

    def _take(self, node: _Node, task: int) -> bool:
        """The next schedule tries ``task`` at ``node``."""
        node.tried.append(task)
        chain = [node]
        while chain[-1].parent is not None:
            chain.append(chain[-1].parent)
        chain.reverse()
        self.path = chain
        self.prefix = [n.via for n in chain[1:]] + [task]
        return True

    def _compact(self) -> None:
        """Drop the nodes with nothing left to try from both heaps (each
        drops them only from its top), so that their paths can go."""
        self._open = tuple([e for e in heap if self._untried(e[2])] for heap in self._open)
        for heap in self._open:
            heapq.heapify(heap)
        self._compacted = max(4096, len(self._open[0]))

    # -- races --------------------------------------------------------------------------------

    def _add_backtracks(self, trail: Sequence[Footprint]) -> None:
        """Find this schedule's races (see the module note) and add their
        reversals to the backtrack sets."""
        path = self.path
        n = min(len(path), len(trail))
        tasks = self.taken[:n]
        width = 1 + max((max(node.runnable) for node in path[:n]), default=-1)
        clocks: list[list[int]] = []
        steps_of: list[list[int]] = [[] for _ in range(width)]  # each task's steps, in order
        index = _Index()
        races: list[tuple[int, int]] = []
        for i in range(n):
            p, step = tasks[i], trail[i]
            mine = steps_of[p]
            before = clocks[mine[-1]] if mine else [-1] * width
            clock = list(before)
            if not step.empty():
                # The steps this one depends on, latest first. One of task
                # q is a race unless it comes before this task's previous
                # step, or before a later one of *another* task that this
                # step depends on (then it is ordered through that one).
                # Not hidden by q's own later steps: the latest may be a
                # lock's release, which no schedule can put after the
                # acquire that waited for it, while the acquire before it
                # can be reordered.
                seen = list(before)  # what the steps of other tasks order
                for j in index.dependencies(step):
                    q = tasks[j]
                    if q == p or j <= seen[q]:
                        continue
                    races.append((j, i))
                    other, own = clocks[j], seen[q]
                    for k in range(width):
                        if other[k] > seen[k]:
                            seen[k] = other[k]
                        if other[k] > clock[k]:
                            clock[k] = other[k]
                    seen[q] = own
                index.add(i, step)
            clock[p] = i
            clocks.append(clock)
            mine.append(i)
        for j, i in races:
            self._reverse(j, i, tasks, clocks, steps_of)

    def _reverse(
        self,
        j: int,
        i: int,
        tasks: list[int],
        clocks: list[list[int]],
        steps_of: list[list[int]],
    ) -> None:
        """Step ``j`` raced with the later step ``i``: at the state before
        ``j``, something must start a schedule that runs ``i`` first. The
        steps that could (source sets, Abdulla et al. POPL 2014): the first
        steps of the tasks in ``v`` -- the steps between ``j`` and ``i``
        that do not come after ``j``, then ``i`` -- that nothing in ``v``
        comes before. If one of their tasks is in the backtrack set there
        already, nothing to add; else one that can run there is added
        (every task that can, if none). With a bound, the task of ``i`` is
        also added at the latest context switch before ``j`` (or the first
        step): trying it there costs no more preemptions."""
        p, q = tasks[i], tasks[j]
        # Each task's first step in v: its first step after j, unless that
        # comes after j (then so do the rest of its steps); the task of i
        # has i at the latest.
        firsts: dict[int, int] = {}
        for r, steps in enumerate(steps_of):
            if r != q:
                at = bisect.bisect_right(steps, j)
                if at < len(steps) and steps[at] < i and clocks[steps[at]][q] < j:
                    firsts[r] = steps[at]
        firsts.setdefault(p, i)

        def initial(r: int) -> bool:
            # No step in v before r's first one comes before it: checking
            # each task's first step in v is enough (a later one that came
            # before it would bring its task's first one along).
            e = firsts[r]
            return all(clocks[e][other] < first for other, first in firsts.items() if first < e)

        node = self.path[j]
        if not any(r in firsts and initial(r) for r in node.backtrack):
            chosen = next(
                (r for r in (p, *sorted(firsts)) if r in node.runnable and initial(r)), None
            )
            self._add(node, chosen)
        if self.bound is not None:
            k = j - 1
            while k > 0 and tasks[k] == tasks[k - 1]:
                k -= 1
            if k >= 0:
                self._add(self.path[k], p)

    def _add(self, node: _Node, p: int | None) -> None:
        """Try ``p`` at ``node`` (every task that can run there, if it
        cannot or is None)."""
        before = len(node.backtrack)
        if p is not None and p in node.runnable:
            node.backtrack.add(p)
        else:
            node.backtrack.update(node.runnable)
        if len(node.backtrack) > before:
            self._mark(node)
