"""``explore(..., include=...)``: switch points inside named modules too.

By default a call into the standard library, an installed package or
critsec itself is one step. ``include`` names modules whose code is
explored like the user's, which is how the behavioural suite checks the
threads runtime's own lock, counter and queue at bytecode granularity.
The litmus program: critsec's plain counter (no lock: the cooperative
runtimes' counter is its C twin, meant for tasks that switch only at
``yield``) used from two threads. Its race is inside ``PlainCounter.add``,
in ``critsec/runtimes/_core.py``.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
import types
from typing import Any

import pytest

import critsec
from critsec.explorer import check, explore, replay
from critsec.explorer._usercode import default_user_code, including
from critsec.runtimes import _core, _threads

State = types.SimpleNamespace  # a bag of shared attributes for one schedule


def plain_counter() -> State:
    return State(counter=_core.PlainCounter(0))


def thread_counter() -> State:
    return State(counter=critsec.runtime("threads").counter(0))


def add_one(s: State) -> None:
    s.counter.add(1)


def added_twice(s: State) -> bool:
    return bool(s.counter.value == 2)


def test_without_include_a_library_call_is_one_step() -> None:
    result = explore(plain_counter, [add_one, add_one], added_twice, strategy="dfs")
    assert not result.failed and result.exhausted  # a proof, within critsec's default view


@pytest.mark.parametrize("include", [("critsec.runtimes",), ("critsec.runtimes._core",)])
def test_include_finds_the_race_inside_the_library_and_replays_it(include: tuple[str]) -> None:
    result = explore(
        plain_counter,
        [add_one, add_one],
        added_twice,
        strategy="dfs",
        preemption_bound=1,
        include=include,
    )
    assert result.failed and result.kind == "invariant"
    assert result.schedule is not None
    # The trace shows the lost update on the counter's own attribute, in _core.py.
    assert {e.location for e in result.events if e.kind == "read"} == {
        "SimpleNamespace.counter._value"
    }
    assert "_core.py" in result.trace
    again = replay(plain_counter, [add_one, add_one], added_twice, result.schedule, include=include)
    assert again.failed and again.events == result.events
    with pytest.raises(AssertionError, match="lost update"):
        check(plain_counter, [add_one, add_one], added_twice, include=include)


def test_including_another_module_leaves_the_race_unseen() -> None:
    # Module granularity: the race is in _core, not in _threads.
    result = explore(
        plain_counter,
        [add_one, add_one],
        added_twice,
        strategy="dfs",
        include=("critsec.runtimes._threads",),
    )
    assert not result.failed and result.exhausted


def test_the_threads_runtime_counter_holds_at_bytecode_granularity() -> None:
    result = explore(
        thread_counter,
        [add_one, add_one],
        added_twice,
        strategy="dfs",
        preemption_bound=2,
        include=("critsec.runtimes",),
        max_schedules=10_000,
    )
    assert not result.failed and result.exhausted
    assert result.schedules > 100  # it did switch inside ThreadCounter.add


def test_the_threads_runtime_queue_holds_at_bytecode_granularity() -> None:
    def setup() -> State:
        return State(q=critsec.runtime("threads").queue(1), got=[])

    def produce(s: State) -> None:
        s.q.put(1)
        s.q.put(2)

    def consume(s: State) -> None:
        s.got.append(s.q.get())
        s.got.append(s.q.get())

    result = explore(
        setup,
        [produce, consume],
        lambda s: s.got == [1, 2] and s.q.empty(),
        strategy="dfs",
        preemption_bound=1,
        include=("critsec.runtimes",),
        max_schedules=10_000,
    )
    assert not result.failed and result.exhausted


def take_default(s: types.SimpleNamespace) -> None:
    s.got.append(s.cache.setdefault("k", []))


def user_dict_state() -> types.SimpleNamespace:
    return types.SimpleNamespace(cache=collections.UserDict(), got=[])


def test_a_race_inside_a_stdlib_class_is_found_when_its_modules_are_included() -> None:
    # UserDict.setdefault is MutableMapping's: `try: return self[key] except
    # KeyError: self[key] = default`, a check-then-act, in the frozen module
    # _collections_abc. Two tasks can each get a default of their own.
    def same(s: types.SimpleNamespace) -> bool:
        return s.got[0] is s.got[1]

    tasks = [take_default, take_default]
    unseen = explore(user_dict_state, tasks, same, strategy="dfs", preemption_bound=2)
    assert not unseen.failed and unseen.exhausted  # each call is one step
    include = ("collections", "_collections_abc")
    found = explore(
        user_dict_state, tasks, same, strategy="dfs", preemption_bound=2, include=include
    )
    assert found.kind == "invariant"
    assert including(include)("<frozen _collections_abc>")


def test_including_is_the_default_predicate_plus_the_modules() -> None:
    user_code = including(("critsec.runtimes",))
    assert user_code(_core.__file__) and user_code(_threads.__file__)
    assert user_code(__file__)  # the user's code stays the user's
    assert not user_code(critsec.__file__)  # critsec/__init__.py is not in the package
    assert not user_code(threading.__file__) and not user_code(queue.__file__)
    assert user_code("<string>")  # exec's code (less what the stdlib generates: generated())
    assert not default_user_code(_core.__file__)
    only_core = including(("critsec.runtimes._core",))
    assert only_core(_core.__file__) and not only_core(_threads.__file__)
    # A file whose name merely starts like the module's is not it.
    assert not only_core(os.path.splitext(_core.__file__)[0] + "_extra.py")
    assert including(()) is default_user_code


def test_bad_includes_are_refused() -> None:
    with pytest.raises(ValueError, match="no module named"):
        including(("critsec.no_such_module",))
    with pytest.raises(TypeError, match="not a str"):
        explore(thread_counter, [add_one], added_twice, include="critsec.runtimes")
    with pytest.raises(ValueError, match="its own code"):
        including(("critsec.explorer",))
    with pytest.raises(ValueError, match="its own code"):
        including(("critsec",))  # the explorer is inside

    def generator_task(s: State) -> Any:
        yield

    with pytest.raises(ValueError, match="thread"):
        explore(State, [generator_task], lambda s: True, include=("critsec.runtimes",))


def test_check_replays_with_include() -> None:
    result = explore(
        plain_counter,
        [add_one, add_one],
        added_twice,
        strategy="dfs",
        include=("critsec.runtimes",),
    )
    assert result.schedule is not None
    with pytest.raises(AssertionError, match="lost update"):
        check(
            plain_counter,
            [add_one, add_one],
            added_twice,
            replay=result.schedule,
            include=("critsec.runtimes",),
        )
