"""Partial-order reduction on real thread tasks: nothing an exhaustive
search can reach is lost.

Each program below touches shared state one of the ways a step's
footprint must get right (``critsec.explorer._footprints``): globals, an
object's attributes (each a place of its own) and its ``__dict__``, two
stores of the same object (which commute), a class attribute behind an
instance's, a module's attribute that is another module's global, items
of lists and dicts, a C method (``list.append``), an in-place operator on
a list, iteration over a list another task grows, locks and conditions,
a property of the user's. ``dfs`` runs each with and without the
reduction; every schedule's outcome -- what each task saw and the final
state -- is collected, and the two sets must be equal, while the reduced
search takes fewer schedules overall. A footprint that leaves out a place
shows up here as an outcome only the plain search reaches.
"""

from __future__ import annotations

import functools
import queue
import random
import sys
import threading
from collections.abc import Callable
from heapq import heappush
from typing import Any

import pending_probe
import pytest

from critsec.explorer import _footprints, _steps, explore
from critsec.explorer._scheduler import Scheduler
from critsec.explorer._threads import ThreadDriver
from critsec.explorer._trace import Recorder
from critsec.explorer._usercode import default_user_code

this = sys.modules[__name__]
shared: Any = None
flag: Any = None


class Box:
    """Each task's own box for what it saw (private: no place shared)."""

    def __init__(self) -> None:
        self.saw: Any = None


class State:
    def __init__(self) -> None:
        self.a, self.b = Box(), Box()
        self.items: list[int] = [0]
        self.table: dict[str, int] = {}
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        self.x = 0
        self.q: queue.Queue[int] = queue.Queue()
        self.event = threading.Event()


class Klass:
    level = 0


class Prop:
    def __init__(self) -> None:
        self._v = 0

    @property
    def v(self) -> int:
        return self._v

    @v.setter
    def v(self, new: int) -> None:
        self._v = new


def fresh() -> State:
    global shared, flag
    shared, flag = 0, 0
    Klass.level = 0
    return State()


# Each program: (task_a, task_b), and what of the state is its outcome.


def lost_update_a(s: State) -> None:
    global shared
    shared += 1


def attribute_via_dict_a(s: State) -> None:
    s.x = 1


def attribute_via_dict_b(s: State) -> None:
    s.b.saw = s.__dict__["x"]


def class_attribute_a(s: State) -> None:
    Klass.level = 1


def class_attribute_b(s: State) -> None:
    k = Klass()
    s.b.saw = k.level


def module_attribute_a(s: State) -> None:
    global flag
    flag = 1


def module_attribute_b(s: State) -> None:
    s.b.saw = this.flag


def append_a(s: State) -> None:
    s.items.append(1)


def length_b(s: State) -> None:
    s.b.saw = len(s.items)


def in_place_a(s: State) -> None:
    items = s.items
    items += [2]


def item_b(s: State) -> None:
    s.b.saw = s.items[-1]


def iterate_b(s: State) -> None:
    total = 0
    for value in s.items:
        total += value
    s.b.saw = total


def check_then_act_a(s: State) -> None:
    if "k" not in s.table:
        s.table["k"] = 1


def check_then_act_b(s: State) -> None:
    if "k" not in s.table:
        s.table["k"] = 2


def locked_a(s: State) -> None:
    global shared
    with s.lock:
        value = shared
        shared = value + 1


def unlocked_read_b(s: State) -> None:
    s.b.saw = shared


def notify_a(s: State) -> None:
    global flag
    with s.ready:
        flag = 1
        s.ready.notify()


def wait_b(s: State) -> None:
    with s.ready:
        while not flag:
            s.ready.wait()
        s.b.saw = flag


def put_1(s: State) -> None:
    s.q.put(1)


def put_2_then_look(s: State) -> None:
    s.q.put(2)
    s.b.saw = s.event.is_set()


def set_event_a(s: State) -> None:
    s.event.set()


prop = Prop()


def property_a(s: State) -> None:
    prop.v = prop.v + 1


def property_b(s: State) -> None:
    s.b.saw = prop.v


def two_rounds_a(s: State) -> None:
    global shared
    for _ in range(2):
        with s.lock:
            shared += 1
        s.a.saw = shared


def attribute_update_a(s: State) -> None:
    # Both tasks may store the very same 1 (or 2): stores of one object.
    s.x = s.x + 1
    s.a.saw = s.x


def attribute_update_b(s: State) -> None:
    s.x = s.x + 1
    s.b.saw = s.x


def store_1(s: State) -> None:
    s.x = 1


def store_1_then_2(s: State) -> None:
    s.x = 1  # the same 1 as store_1's: the two stores commute
    s.x = 2  # but not this one


def last_item_a(s: State) -> None:
    s.a.saw = s.items[-1]  # in a list of one: the item first_item_b stores


def first_item_b(s: State) -> None:
    s.items[0] = 5


def key_a(s: State) -> None:
    s.table["k"] = 1


def keys_b(s: State) -> None:
    s.b.saw = ("j" in s.table, "k" in s.table)


PROGRAMS: dict[str, tuple[list[Callable[[State], None]], Callable[[State], Any]]] = {
    "lost update on an attribute": (
        [attribute_update_a, attribute_update_b],
        lambda s: (s.x, s.a.saw, s.b.saw),
    ),
    "the same object stored": ([store_1, store_1_then_2], lambda s: s.x),
    "an item of a list, counted from either end": (
        [last_item_a, first_item_b],
        lambda s: s.a.saw,
    ),
    "keys of a dict": ([key_a, keys_b], lambda s: s.b.saw),
    "lost update": ([lost_update_a, lost_update_a], lambda s: shared),
    "attribute and __dict__": ([attribute_via_dict_a, attribute_via_dict_b], lambda s: s.b.saw),
    "class attribute behind an instance": (
        [class_attribute_a, class_attribute_b],
        lambda s: s.b.saw,
    ),
    "module attribute is a global": (
        [module_attribute_a, module_attribute_b],
        lambda s: s.b.saw,
    ),
    "C method": ([append_a, length_b], lambda s: s.b.saw),
    "in-place operator on a list": ([in_place_a, item_b], lambda s: s.b.saw),
    "iteration while another grows the list": ([append_a, iterate_b], lambda s: s.b.saw),
    "check then act": ([check_then_act_a, check_then_act_b], lambda s: dict(s.table)),
    "lock and an unlocked read": ([locked_a, unlocked_read_b], lambda s: (shared, s.b.saw)),
    "condition": ([notify_a, wait_b], lambda s: s.b.saw),
    "property": ([property_a, property_b], lambda s: (prop.v, s.b.saw)),
    "queue order": ([put_1, put_2_then_look], lambda s: list(s.q.queue)),
    "event": ([set_event_a, put_2_then_look], lambda s: s.b.saw),
    "loop, lock, read": ([two_rounds_a, two_rounds_a], lambda s: (shared, s.a.saw)),
}


@functools.cache
def reached(name: str, reduction: bool, bound: int | None) -> tuple[frozenset[Any], int]:
    """Every outcome dfs reaches in program ``name``, and its schedules."""
    tasks, outcome = PROGRAMS[name]
    seen: set[Any] = set()

    def setup() -> State:
        prop._v = 0
        return fresh()

    def invariant(s: State) -> bool:
        seen.add(repr(outcome(s)))
        return True

    result = explore(
        setup,
        tasks,
        invariant,
        strategy="dfs",
        preemption_bound=bound,
        reduction=reduction,
        max_schedules=20_000,
    )
    assert not result.failed, result.message
    assert result.exhausted
    return frozenset(seen), result.schedules


#: Too many schedules for plain dfs without a bound (over 20,000).
BOUNDED_ONLY = {"loop, lock, read"}
CASES = [
    (name, bound)
    for name in sorted(PROGRAMS)
    for bound in (None, 1)
    if bound is not None or name not in BOUNDED_ONLY
]


@pytest.mark.parametrize(("name", "bound"), CASES)
def test_reduced_dfs_reaches_every_outcome_of_plain_dfs(name: str, bound: int | None) -> None:
    plain, plain_schedules = reached(name, False, bound)
    reduced, reduced_schedules = reached(name, True, bound)
    assert reduced == plain
    assert reduced_schedules <= plain_schedules


def test_the_reduction_cuts_schedules_overall() -> None:
    plain = sum(reached(name, False, bound)[1] for name, bound in CASES)
    reduced = sum(reached(name, True, bound)[1] for name, bound in CASES)
    assert reduced < plain / 2, (reduced, plain)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_what_a_waiting_task_will_touch_is_what_its_step_touches(name: str) -> None:
    # Sleep sets keep a task asleep while the steps taken touch nothing of
    # its next step, worked out while it waits (Steps.pending): it must be
    # what the step touches when it runs, whatever ran in between.
    # The checker runs on the task threads, inside the scheduler: its file
    # must not be the user's code, or it would get switch points itself.
    tasks, _ = PROGRAMS[name]
    checker = pending_probe.__file__
    driver = ThreadDriver(user_code=lambda f: default_user_code(f) and f != checker)
    strategy, rng = pending_probe.PendingChecked(), random.Random(0)
    for _ in range(200):
        strategy.begin(rng)
        scheduler = Scheduler(strategy)
        driver.run(fresh, tasks, lambda s: True, scheduler, Recorder())
        if not scheduler.choices or not strategy.end(scheduler.steps, scheduler.trail or ()):
            break
    assert strategy.compared > 0
    assert not strategy.wrong, strategy.wrong[:3]


# -- what each step is said to touch, one pattern at a time -------------------------------


def footprints(
    tasks: list[Callable[[State], None]], monkeypatch: pytest.MonkeyPatch
) -> tuple[State, dict[str, list[Any]]]:
    """One schedule of ``tasks``; for each instruction name, the footprints
    its steps were given (in order), and the schedule's state."""
    said: dict[str, list[Any]] = {}
    states: list[State] = []
    real = _footprints.footprint

    def spy(frame: Any, opname: str, *rest: Any) -> Any:
        touched = real(frame, opname, *rest)
        said.setdefault(opname, []).append(touched)
        return touched

    def setup() -> State:
        states.append(fresh())
        return states[-1]

    with monkeypatch.context() as patch:
        patch.setattr(_steps, "footprint", spy)
        explore(setup, tasks, lambda s: True, strategy="dfs", max_schedules=1)
    return states[0], said


def obj(thing: Any) -> tuple[str, int]:
    return ("obj", id(thing))


def test_an_in_place_operator_on_a_list_writes_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    state, said = footprints([in_place_a], monkeypatch)
    (touched,) = said["BINARY_OP"]
    assert touched is not None and obj(state.items) in touched[1]


def test_an_attribute_and_the_same_name_in_dict_are_one_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def via_dict(s: State) -> None:
        d = s.__dict__
        s.b.saw = d["x"]

    state, said = footprints([attribute_via_dict_a, via_dict], monkeypatch)
    (store, _) = said["STORE_ATTR"]  # s.x = 1; s.b.saw = ...
    (subscript,) = said["BINARY_SUBSCR"]
    assert store is not None and subscript is not None
    assert store[1] == subscript[0] == {(*obj(vars(state)), "x")}


def test_an_instance_attribute_read_reads_its_class_too(monkeypatch: pytest.MonkeyPatch) -> None:
    _, said = footprints([class_attribute_a, class_attribute_b], monkeypatch)
    assert said["STORE_ATTR"][0] == (frozenset(), {(*obj(Klass), "level")}, False)
    assert any(t is not None and (*obj(Klass), "level") in t[0] for t in said["LOAD_ATTR"])


def test_a_module_attribute_is_the_global_of_that_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _, said = footprints([module_attribute_a, module_attribute_b], monkeypatch)
    assert said["STORE_GLOBAL"] == [(frozenset(), {("global", "flag")}, False)]
    assert (frozenset({("global", "flag")}), frozenset(), False) in said["LOAD_ATTR"]


def heap_push_a(s: State) -> None:
    heappush(s.items, 1)  # a C function, known by name: it may do anything


def test_list_methods_write_the_list_other_c_calls_may_touch_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, said = footprints([append_a, iterate_b], monkeypatch)
    assert said["CALL"] == [(frozenset(), {obj(state.items)}, False)]  # s.items.append(1)
    assert (frozenset({obj(state.items)}), frozenset(), False) in said["FOR_ITER"]
    assert footprints([heap_push_a], monkeypatch)[1]["CALL"] == [None]


def test_a_with_statement_writes_its_lock_at_both_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    state, said = footprints([locked_a, notify_a], monkeypatch)
    lock: Any = (frozenset(), {obj(state.lock)}, False)
    with_lock, with_condition = said["BEFORE_WITH"]
    assert with_lock == lock
    # The condition: its lock, and itself (its waiters).
    assert with_condition == (frozenset(), {obj(state.lock), obj(vars(state.ready))}, False)
    assert lock in said["CALL"]  # __exit__ of `with s.lock`


def test_a_method_of_a_lock_writes_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    def acquire_release(s: State) -> None:
        s.lock.acquire()
        s.lock.release()

    state, said = footprints([acquire_release], monkeypatch)
    assert said["CALL"] == [(frozenset(), {obj(state.lock)}, False)] * 2


def test_a_range_loop_and_an_int_update_touch_nothing_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, said = footprints([two_rounds_a], monkeypatch)
    nothing: Any = (frozenset(), frozenset(), False)
    assert said["FOR_ITER"] == [nothing] * 3
    assert said["BINARY_OP"] == [nothing] * 2  # shared += 1 on an int


def woken(
    tasks: list[Callable[[State], None]], schedules: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[State], list[frozenset[Any]]]:
    """The first ``schedules`` of dfs on ``tasks``: their states, and what
    each step of a task woken from a wait was said to write."""
    from critsec.explorer._scheduler import Scheduler

    said: list[tuple[str, frozenset[Any]]] = []
    real = Scheduler.declare

    def spy(self: Scheduler, reads: Any = (), writes: Any = (), reads_all: bool = False) -> None:
        said.append((sys._getframe(1).f_code.co_name, frozenset(writes)))
        real(self, reads, writes, reads_all)

    states: list[State] = []

    def setup() -> State:
        states.append(fresh())
        return states[-1]

    with monkeypatch.context() as patch:
        patch.setattr(Scheduler, "declare", spy)
        explore(setup, tasks, lambda s: True, strategy="dfs", max_schedules=schedules)
    return states, [writes for name, writes in said if name == "block"]


def test_a_task_woken_in_a_lock_it_waited_for_writes_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dfs's first schedule runs a until it finishes; its second preempts a
    # inside the lock, so b blocks, and is woken when a releases it.
    states, writes = woken([locked_a, locked_a], 30, monkeypatch)
    locks = {obj(s.lock) for s in states}
    assert writes and all(len(w) == 1 and w <= locks for w in writes)


def wait_for_ready(s: State) -> None:
    with s.ready:
        while not s.x:
            s.ready.wait()


def make_ready(s: State) -> None:
    with s.ready:
        s.items.append(1)
        s.x = 1
        s.ready.notify()


def test_a_task_woken_by_a_notify_writes_the_condition_and_its_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dfs's first schedule runs the waiter first: it waits, and the notify wakes it.
    (state,), writes = woken([wait_for_ready, make_ready], 1, monkeypatch)
    assert writes == [{obj(state.lock), obj(vars(state.ready))}]


def test_a_with_statement_around_a_loop_still_knows_its_exit_and_list_methods_read_no_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, said = footprints([make_ready, wait_for_ready], monkeypatch)
    # The exits of both `with s.ready` (the second after a while loop).
    places: Any = (frozenset(), {obj(state.lock), obj(vars(state.ready))}, False)
    assert said["CALL"].count(places) == 3  # notify and both __exit__: none opaque
    assert None not in said["CALL"]
    # Looking up `s.items.append` reads the list's classes, not the list.
    lookups = [t for t in said.get("LOAD_METHOD", said.get("LOAD_ATTR", [])) if t is not None]
    assert any(
        (*obj(list), "append") in t[0] and not any(p[:2] == obj(state.items) for p in t[0])
        for t in lookups
    )
    assert None not in said.get("LOAD_METHOD", [])
