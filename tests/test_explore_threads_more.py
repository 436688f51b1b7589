"""The threads driver's own rules at their edges: a lock that setup keeps,
Ctrl-C while tasks run, a backend that does not exist, and no free
``sys.monitoring`` tool id."""

from __future__ import annotations

import _thread
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from critsec.explorer import explore
from critsec.explorer._threads import BACKENDS, ThreadDriver


@dataclass
class Shared:
    lock: Any = None
    seen: list[str] = field(default_factory=list)


def take(s: Shared) -> None:
    with s.lock:
        s.seen.append("in")


def test_a_lock_setup_keeps_is_named_as_setups_in_the_deadlock() -> None:
    def setup() -> Shared:
        lock = threading.Lock()
        lock.acquire()  # and never released
        return Shared(lock=lock)

    result = explore(setup, [take], lambda s: True, strategy="dfs")
    assert result.kind == "deadlock"
    assert (
        "'take' waits for Lock #1 held by setup (the thread running setup and the invariant)"
        in result.message
    )


def test_ctrl_c_while_tasks_run_stops_the_exploration_at_once() -> None:
    before = set(threading.enumerate())
    seen: list[str] = []

    def interrupting(s: Shared) -> None:
        seen.append("running")
        _thread.interrupt_main()  # as a Ctrl-C would: the driver's thread is told
        s.seen.append("after")

    with pytest.raises(KeyboardInterrupt):
        explore(Shared, [interrupting, interrupting], lambda s: True, strategy="dfs")
    # The explorer did not wait for the tasks: they were told to unwind, and do.
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert seen and seen.count("running") <= 2
    # ... and nothing of the schedule stays patched.
    assert threading.Lock in (_thread.allocate_lock, _thread.LockType)


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'ptrace'; valid here: "):
        ThreadDriver(backend="ptrace")


@pytest.mark.skipif("monitoring" not in BACKENDS, reason="sys.monitoring is 3.12+")
def test_no_free_monitoring_tool_id_is_an_error_that_says_who_uses_them() -> None:
    monitoring: Any = getattr(sys, "monitoring")  # noqa: B009 -- 3.12+ only
    taken = []
    try:
        for tool in range(6):
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "a test holding every tool id")
                taken.append(tool)
        with pytest.raises(RuntimeError, match=r"every sys\.monitoring tool id is taken"):
            explore(Shared, [lambda s: None], lambda s: True, strategy="dfs")
    finally:
        for tool in taken:
            monitoring.free_tool_id(tool)
    # With the ids free again, the same exploration runs.
    assert not explore(Shared, [lambda s: None], lambda s: True, strategy="dfs").failed


def test_task_threads_start_together_and_are_ordinary_threads() -> None:
    from critsec.explorer._launch import start_all

    gate = threading.Event()
    seen: list[tuple[str, bool]] = []

    def body() -> None:
        me = threading.current_thread()
        seen.append((me.name, me._started.is_set()))  # type: ignore[attr-defined]
        gate.wait()

    threads = [threading.Thread(target=body, name=f"t{i}", daemon=True) for i in range(20)]
    start_all(threads)
    # Up, as after start() on each: started, alive, known to threading.
    assert all(t.is_alive() and t.ident is not None for t in threads)
    assert all(t in threading.enumerate() for t in threads)
    gate.set()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted((f"t{i}", True) for i in range(20))


def test_a_task_reads_its_own_thread_as_usual() -> None:
    def name_of_thread(state: dict[str, str]) -> None:
        state["name"] = threading.current_thread().name

    names: set[str] = set()

    def record(state: dict[str, str]) -> bool:
        names.add(state["name"])
        return True

    result = explore(dict, [name_of_thread], record, max_schedules=3)
    assert not result.failed
    assert names == {"critsec-task-name_of_thread"}
