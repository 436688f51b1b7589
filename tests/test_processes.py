"""What only the processes runtime has: real child processes, pickling,
shared memory, and processes that die, hang or are interrupted.

The behaviour every runtime shares is in ``test_primitives.py``. Tasks here
are module-level functions (``spawn`` pickles them by name) and synchronise
through ``multiprocessing`` events; nothing sleeps to let a process run.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import critsec
from critsec.runtimes import _shared_memory
from critsec.runtimes._core import NOT_EMPTY, NOT_FULL
from critsec.runtimes._processes import (
    ProcessCounter,
    ProcessesRuntime,
    ProcessLock,
    ProcessQueue,
)
from critsec.runtimes._shared_memory import _HEADER

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# A task blocked "forever" waits at most this long (a safety net for a broken
# runtime; in a passing run the task is terminated long before).
FOREVER = 60


@pytest.fixture(params=["fork", "spawn"])
def prt(request: pytest.FixtureRequest) -> ProcessesRuntime:
    rt = critsec.runtime("processes", start_method=request.param)
    assert isinstance(rt, ProcessesRuntime)
    return rt


@pytest.fixture
def fork_rt() -> ProcessesRuntime:
    rt = critsec.runtime("processes", start_method="fork")
    assert isinstance(rt, ProcessesRuntime)
    return rt


# -- looking for processes left behind -----------------------------------------

# multiprocessing's own helper processes: they outlive a run by design.
HELPERS = (b"multiprocessing.resource_tracker", b"multiprocessing.forkserver")


def processes(*, helpers: bool = False) -> Iterator[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc,
    but multiprocessing's helpers (:data:`HELPERS`); with ``helpers``, of
    those helpers only."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # it exited while we looked
            continue
        if any(helper in cmdline for helper in HELPERS) != helpers:
            continue
        # The command name (field 2) may hold spaces and parentheses.
        state, ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        yield int(entry), state, int(ppid), int(pgrp)


def _command(pid: int) -> str:
    """A process's command line, for a failure message."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    return cmdline.decode(errors="replace")[:200]


def my_children() -> set[int]:
    """Child processes of this one, zombies included (a zombie was not joined)."""
    return {pid for pid, _, ppid, _ in processes() if ppid == os.getpid()}


def assert_no_new_children(before: set[int]) -> None:
    assert multiprocessing.active_children() == []
    assert my_children() - before == set()


# -- tasks (module level: spawn pickles them by name) ---------------------------


def lesson_task(lock: Any, counter: Any, n: int, delta: int) -> int:
    for _ in range(n):
        lock.acquire()
        try:
            counter.value += delta
        finally:
            lock.release()
    return n


def guarded(lock: Any, inside: Any, total: Any, n: int) -> int:
    violations = 0
    for _ in range(n):
        with lock:
            if inside.add(1) != 1:  # someone else is in the critical section
                violations += 1
            inside.add(-1)
        total.add(1)
    return violations


def hold_lock(lock: Any, held: Any, release_now: Any) -> str:
    with lock:
        held.set()
        assert release_now.wait(FOREVER)
    return "released"


def probe_lock(lock: Any, held: Any, release_now: Any) -> dict[str, Any]:
    assert held.wait(FOREVER)
    seen = {
        "locked": lock.locked(),
        "timeout": lock.acquire(timeout=0.05),
        "nonblocking": lock.acquire(False),
    }
    release_now.set()
    seen["after_release"] = lock.acquire(timeout=FOREVER)
    lock.release()
    return seen


def acquire_and_leave(lock: Any) -> bool:
    return lock.acquire()  # type: ignore[no-any-return]


def produce(q: Any, items: list[Any], left: Any = None) -> int:
    for item in items:
        q.put(item)
    if left is not None and left.add(-1) == 0:
        q.shutdown()  # the last producer closes the queue; consumers drain it
    return len(items)


def consume(q: Any, n: int = -1) -> list[Any]:
    got: list[Any] = []
    while len(got) != n:
        try:
            got.append(q.get())
        except critsec.ShutDown:
            break
    return got


def get_until_shutdown(q: Any, waiting: Any) -> Any:
    waiting.set()
    try:
        return ("got", q.get())
    except critsec.ShutDown:
        return "shutdown"


def shut_down_when_waiting(q: Any, waiting: Any) -> str:
    assert waiting.wait(FOREVER)
    q.shutdown()
    return "shut"


def put_announced(q: Any, putting: Any, item: Any) -> str:
    putting.set()
    q.put(item)
    return "put"


def get_when_putting(q: Any, putting: Any) -> Any:
    assert putting.wait(FOREVER)
    return q.get()


def put_and_report(q: Any, item: Any, done: Any) -> str:
    q.put(item)
    done.set()
    return "put"


def free_room_for_the_small_one(q: Any, small_done: Any, n: int) -> list[Any]:
    # Both putters must be asleep in put() before room is made; the
    # condition's count of sleepers is the only way to know it.
    sleepers = q._conditions[NOT_FULL]
    while sleepers.waiters < 2:
        os.sched_yield()
    got = [q.get()]  # room for the small item only, not for the big one
    woke = small_done.wait(10)  # a safety net: in a correct run it is set at once
    got += [q.get() for _ in range(n - 1)]  # now room for the big one too
    return [woke, got]


def put_all_then_shut_down(q: Any, items: list[Any]) -> str:
    q.put_many(items)  # more than the bound: the rest waits for room
    q.shutdown()
    return "shut"


def take_batches(q: Any, most: int) -> list[list[Any]]:
    batches = []
    while True:
        try:
            batches.append([d.item for d in q.get_many(most)])
        except critsec.ShutDown:
            return batches


def put_many_until_shutdown(q: Any, items: list[Any]) -> str:
    try:
        q.put_many(items)
    except critsec.ShutDown:
        return "shutdown"
    return "put"


def shut_down_when_a_putter_waits(q: Any) -> str:
    while q._conditions[NOT_FULL].waiters < 1:  # the putter sleeps in put_many
        os.sched_yield()
    q.shutdown()
    return "shut"


def get_many_once(q: Any, most: int) -> list[Any]:
    return [d.item for d in q.get_many(most)]


def put_many_when_a_getter_waits(q: Any, items: list[Any]) -> int:
    while q._conditions[NOT_EMPTY].waiters < 1:  # the getter sleeps in get_many
        os.sched_yield()
    before = q._memory.sequence[0]
    q.put_many(items)
    return int(q._memory.sequence[0] - before)  # wake-ups of getters


def take_one_and_end(q: Any, took: Any = None, go: Any = None) -> None:
    q.get()  # and never task_done: the item goes back once this process is gone
    if took is not None:
        took.set()
        assert go.wait(FOREVER)


def raise_value_error(word: str) -> None:
    raise ValueError(f"bad {word}")  # the line the traceback must show


class TwoArgError(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")  # unpickling calls TwoArgError("1/2"): fails


def raise_unrebuildable() -> None:
    raise TwoArgError(1, 2)


def block(event: Any) -> str:
    event.wait(FOREVER)
    return "woke"


def fail_at_once() -> None:
    raise RuntimeError("first to fail")


def kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def exit_hard(code: int) -> None:
    os._exit(code)


def return_lock() -> Any:
    return threading.Lock()


def return_big(n: int) -> bytes:
    return b"x" * n


def identity(value: Any) -> Any:
    return value


# -- the runtime -----------------------------------------------------------------


def test_runtime_identity_and_start_methods() -> None:
    rt = critsec.runtime("processes")
    assert (rt.name, rt.style) == ("processes", "blocking")
    assert repr(rt) == "critsec.runtime('processes')"
    spawn = critsec.runtime("processes", start_method="spawn")
    assert isinstance(spawn, ProcessesRuntime)
    assert spawn.context.get_start_method() == "spawn"
    assert repr(spawn) == "critsec.runtime('processes', start_method='spawn')"
    with pytest.raises(ValueError) as caught:
        critsec.runtime("processes", start_method="threads")
    for method in ("fork", "spawn", "forkserver"):
        assert method in str(caught.value)
    with pytest.raises(TypeError):
        critsec.runtime("processes", start_method=1)


# -- lock and counter across processes --------------------------------------------


def test_lesson_lock_and_counter(prt: ProcessesRuntime) -> None:
    # The lesson's process example, without the Manager: +1 N times and -1
    # N+1 times from 10, under the lock, leaves 9.
    n = 20_000
    lock, counter = prt.lock(), prt.counter(10)
    done = prt.run(
        critsec.task(lesson_task, lock, counter, n, 1),
        critsec.task(lesson_task, lock, counter, n + 1, -1),
    )
    assert done == [n, n + 1]
    assert counter.value == 9
    assert not lock.locked()


def test_lock_excludes_and_add_is_exact(prt: ProcessesRuntime) -> None:
    lock, inside, total = prt.lock(), prt.counter(), prt.counter()
    n = 2_000
    violations = prt.run(*[critsec.task(guarded, lock, inside, total, n) for _ in range(3)])
    assert violations == [0, 0, 0]
    assert total.value == 3 * n
    assert inside.value == 0


def test_lock_held_by_another_process(prt: ProcessesRuntime) -> None:
    lock = prt.lock()
    held, release_now = prt.context.Event(), prt.context.Event()
    released, seen = prt.run(
        critsec.task(hold_lock, lock, held, release_now),
        critsec.task(probe_lock, lock, held, release_now),
    )
    assert released == "released"
    assert seen == {"locked": True, "timeout": False, "nonblocking": False, "after_release": True}
    assert not lock.locked()


def test_a_lock_left_held_by_an_ended_task_is_handed_on(fork_rt: ProcessesRuntime) -> None:
    # A robust mutex has an owner: when it ends holding the lock, the next
    # acquirer gets it at once and is told (a semaphore would stay locked).
    lock = fork_rt.lock()
    assert fork_rt.run(critsec.task(acquire_and_leave, lock)) == [True]
    assert not lock.locked()
    assert lock.acquire(timeout=0) is True
    assert lock.owner_died is True
    lock.release()
    with lock:
        assert lock.owner_died is False


def test_only_the_holder_releases(fork_rt: ProcessesRuntime) -> None:
    lock = fork_rt.lock()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            holding.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait()
    with pytest.raises(RuntimeError, match="held by another thread"):
        lock.release()
    release.set()
    thread.join()
    assert not lock.locked()


def test_lock_semantics_match_threading_lock() -> None:
    lock = ProcessLock()
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(timeout=0) is False
    assert lock.acquire(True, 0.05) is False
    assert "locked" in repr(lock)
    lock.release()
    assert not lock.locked()
    with pytest.raises(ValueError):
        lock.acquire(False, 1)
    with pytest.raises(ValueError):
        lock.acquire(timeout=-2)
    with pytest.raises(OverflowError):
        lock.acquire(timeout=threading.TIMEOUT_MAX * 2)
    with lock as entered:
        assert entered is True
        assert lock.locked()
    assert not lock.locked()
    assert "unlocked" in repr(lock)


def test_counter_value_add_and_range() -> None:
    counter = ProcessCounter(5)
    assert counter.value == 5
    assert counter.add(3) == 8
    assert counter.add(-10) == -2
    counter.value = 2**63 - 1  # int64's largest: still fits
    assert counter.value == 2**63 - 1
    with pytest.raises(OverflowError):
        counter.add(1)  # would wrap around in ctypes
    assert counter.value == 2**63 - 1  # a failed add changes nothing
    with pytest.raises(OverflowError):
        counter.value = -(2**63) - 1
    with pytest.raises(OverflowError):
        ProcessCounter(2**63)
    for wrong in (1.5, True, "1"):
        with pytest.raises(TypeError):
            ProcessCounter(wrong)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            counter.value = wrong  # type: ignore[assignment]
        with pytest.raises(TypeError):
            counter.add(wrong)  # type: ignore[arg-type]
    assert repr(counter) == f"<ProcessCounter value={2**63 - 1}>"


# -- the queue across processes -----------------------------------------------------


@pytest.fixture(params=["C", "Python"])
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Queues made in the test run their fast path in C, or in Python (the
    code the C path falls back to, kept working)."""
    monkeypatch.setattr(_shared_memory, "FAST_PATH_IN_C", request.param == "C")
    return str(request.param)


@pytest.mark.usefixtures("fast_path")
def test_queue_fifo_from_one_producer_through_a_small_buffer(prt: ProcessesRuntime) -> None:
    # Items of many sizes through 512 bytes: the producer often waits for
    # room, and items wrap around the end of the ring.
    q = prt.queue(buffer_size=512)
    items = [("x" * (i % 37), i) for i in range(800)]
    produced, consumed = prt.run(
        critsec.task(produce, q, items), critsec.task(consume, q, len(items))
    )
    assert produced == len(items)
    assert consumed == items
    assert q.qsize() == 0


@pytest.mark.usefixtures("fast_path")
def test_producers_and_consumers_lose_and_duplicate_nothing(prt: ProcessesRuntime) -> None:
    q, left = prt.queue(buffer_size=1024), prt.counter(3)
    batches = [[(p, i) for i in range(300)] for p in range(3)]
    results = prt.run(
        *[critsec.task(produce, q, batch, left) for batch in batches],
        *[critsec.task(consume, q) for _ in range(2)],
    )
    taken = [item for got in results[3:] for item in got]
    assert Counter(taken) == Counter(item for batch in batches for item in batch)
    for got in results[3:]:
        for p in range(3):  # each producer's items in its own order
            mine = [item for item in got if item[0] == p]
            assert mine == sorted(mine)


def test_shutdown_wakes_a_getter_in_another_process(prt: ProcessesRuntime) -> None:
    # The getter may or may not be blocked yet when shutdown comes; either
    # way it must end with ShutDown, not wait forever.
    q, waiting = prt.queue(), prt.context.Event()
    outcomes = prt.run(
        critsec.task(get_until_shutdown, q, waiting),
        critsec.task(shut_down_when_waiting, q, waiting),
    )
    assert outcomes == ["shutdown", "shut"]


@pytest.mark.usefixtures("fast_path")
def test_unbounded_queue_with_a_small_buffer_blocks_a_putter_until_room(
    prt: ProcessesRuntime,
) -> None:
    # Items of one pickled size: taking one out makes room for exactly one.
    q = prt.queue(buffer_size=256)
    filled: list[str] = []
    while True:
        try:
            q.put_nowait(f"{len(filled):04d}")
        except critsec.Full:
            break
        filled.append(f"{len(filled):04d}")
    assert q.maxsize == 0 and not q.full()  # full() speaks of maxsize only
    with pytest.raises(critsec.Full):
        q.put("late", timeout=0.05)
    putting = prt.context.Event()
    put, got = prt.run(
        critsec.task(put_announced, q, putting, "late"),
        critsec.task(get_when_putting, q, putting),
    )
    assert (put, got) == ("put", "0000")
    assert [q.get_nowait() for _ in range(q.qsize())] == [*filled[1:], "late"]


@pytest.mark.usefixtures("fast_path")
def test_room_made_for_one_putter_wakes_the_one_it_fits(fork_rt: ProcessesRuntime) -> None:
    # A big and a small item wait for bytes. One get frees room for the small
    # one only: it must be put, even if the big one's putter is woken first.
    q = fork_rt.queue(buffer_size=256)
    filled = []
    while True:
        try:
            q.put_nowait(b"f")  # the same pickled size as b"s"
        except critsec.Full:
            break
        filled.append(b"f")
    big, small = b"x" * 100, b"s"
    big_done, small_done = fork_rt.context.Event(), fork_rt.context.Event()
    big_put, small_put, (woke, got) = fork_rt.run(
        critsec.task(put_and_report, q, big, big_done),
        critsec.task(put_and_report, q, small, small_done),
        critsec.task(free_room_for_the_small_one, q, small_done, len(filled)),
    )
    assert woke is True
    assert (big_put, small_put, got) == ("put", "put", filled)
    assert [q.get_nowait(), q.get_nowait()] == [small, big]


def test_item_larger_than_the_buffer_raises_at_once() -> None:
    q: ProcessQueue[Any] = ProcessQueue(buffer_size=64)
    fits = b"x" * (64 - _HEADER.size - len(pickle.dumps(b"", pickle.HIGHEST_PROTOCOL)))
    assert _HEADER.size + len(pickle.dumps(fits, pickle.HIGHEST_PROTOCOL)) == 64
    q.put(fits)  # exactly the whole buffer
    with pytest.raises(critsec.Full):
        q.put_nowait(b"")  # no byte left, though maxsize is 0
    assert q.get() == fits
    with pytest.raises(ValueError, match="larger buffer_size"):
        q.put(fits + b"x")  # would block forever: raises instead
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put(lambda: None)
    assert q.qsize() == 0 and q.unfinished_tasks == 1


def test_queue_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        ProcessQueue(buffer_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ProcessQueue(buffer_size=0)
    assert ProcessQueue(-1, buffer_size=100).maxsize == -1  # <= 0: no bound, as queue.Queue
    assert ProcessQueue(3, buffer_size=100).maxsize == 3


# -- batches: put_many, get_many -----------------------------------------------


def test_batches_keep_fifo_order_through_a_small_bound(prt: ProcessesRuntime) -> None:
    q = prt.queue(10)
    shut, batches = prt.run(
        critsec.task(put_all_then_shut_down, q, list(range(25))),
        critsec.task(take_batches, q, 7),
    )
    assert shut == "shut"
    assert all(1 <= len(batch) <= 7 for batch in batches)
    assert [item for batch in batches for item in batch] == list(range(25))
    assert q.unfinished_tasks == 25  # each item counts for task_done
    for _ in range(25):
        q.task_done()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_a_batch_that_does_not_fit_puts_what_fits() -> None:
    q: ProcessQueue[Any] = ProcessQueue(3, buffer_size=4096)
    with pytest.raises(critsec.Full):
        q.put_many(["a", "b", "c", "d"], block=False)
    assert q.qsize() == 3 and q.unfinished_tasks == 3  # the items before "d" went in
    with pytest.raises(critsec.Full):
        q.put_many(["e"], timeout=0)
    q.put_many([])  # nothing to put: never waits, never fails
    assert [d.item for d in q.get_many(5)] == ["a", "b", "c"]
    with pytest.raises(critsec.Empty):
        q.get_many(5, block=False)
    with pytest.raises(critsec.Empty):
        q.get_many(5, timeout=0)
    for most in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="most must be a positive int"):
            q.get_many(most)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        q.put_many(["x"], timeout=-1)
    assert q.qsize() == 0


def test_a_batch_is_pickled_and_checked_before_any_item_goes_in() -> None:
    q: ProcessQueue[Any] = ProcessQueue(buffer_size=64)
    with pytest.raises(ValueError, match="larger buffer_size"):
        q.put_many([b"small", b"x" * 64])
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put_many([b"small", lambda: None])
    assert q.qsize() == 0 and q.unfinished_tasks == 0


def test_shutdown_during_put_many_keeps_the_items_before(fork_rt: ProcessesRuntime) -> None:
    q = fork_rt.queue(3)
    put, shut = fork_rt.run(
        critsec.task(put_many_until_shutdown, q, ["a", "b", "c", "d", "e"]),
        critsec.task(shut_down_when_a_putter_waits, q),
    )
    assert (put, shut) == ("shutdown", "shut")
    assert [d.item for d in q.get_many(10)] == ["a", "b", "c"]
    with pytest.raises(critsec.ShutDown):
        q.get_many(10)


def test_a_batch_wakes_a_waiting_getter_once_and_it_takes_all(fork_rt: ProcessesRuntime) -> None:
    q = fork_rt.queue()
    got, wakes = fork_rt.run(
        critsec.task(get_many_once, q, 5),
        critsec.task(put_many_when_a_getter_waits, q, [1, 2, 3]),
    )
    # The three went in under one mutex before the getter could run again.
    assert (got, wakes) == ([1, 2, 3], 1)


def test_get_many_hands_out_oldest_first_what_dead_takers_held(fork_rt: ProcessesRuntime) -> None:
    # task_done acknowledges the oldest item held, so a batch must come
    # oldest first even when an older item is found ready mid-batch: here b
    # (id 1) is ready first, a (id 0) only once the batch finds no slot.
    q = fork_rt.queue(buffer_size=4096, delivery="at-least-once", in_flight=2)
    q.put_many(["a", "b", "c"])
    context: Any = fork_rt.context  # a BaseContext to typeshed, which has no Process
    took, go = context.Event(), context.Event()
    first = context.Process(target=take_one_and_end, args=(q, took, go))
    first.start()
    assert took.wait(FOREVER)  # a is lent to a live process
    second = context.Process(target=take_one_and_end, args=(q,))
    second.start()
    second.join()
    assert q.reclaim() == 1  # b is ready; a's taker still lives
    go.set()
    first.join()  # a's taker is gone, unnoticed so far
    batch = q.get_many(3)
    assert [(d.item, d.id, d.deliveries) for d in batch] == [("a", 0, 2), ("b", 1, 2)]


def test_get_many_lends_each_item_at_least_once() -> None:
    q: ProcessQueue[Any] = ProcessQueue(buffer_size=4096, delivery="at-least-once", in_flight=2)
    q.put_many(["a", "b", "c"])
    first = q.get_many(5)  # two slots: two items lent
    assert [(d.item, d.id, d.deliveries) for d in first] == [("a", 0, 1), ("b", 1, 1)]
    with pytest.raises(critsec.Empty):
        q.get_many(5, block=False)  # no free slot until an acknowledgement
    q.task_done()
    assert [d.item for d in q.get_many(5)] == ["c"]
    q.task_done()
    q.task_done()
    with pytest.raises(ValueError, match="holds no item"):
        q.task_done()
    assert q.unfinished_tasks == 0


@pytest.mark.parametrize("seed", range(12))
def test_ring_buffer_matches_a_model(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Random puts and gets of random sizes against a deque: same order, and
    # Full exactly when the items or the bytes would not fit. The queue runs
    # its fast path in C; a twin runs it in Python, and after every step
    # both hold the same bytes of state (one layout, one protocol).
    rng = random.Random(seed)
    size, maxsize = rng.randrange(40, 300), rng.choice([0, 0, 3, 7])
    q: ProcessQueue[bytes] = ProcessQueue(maxsize, buffer_size=size)
    monkeypatch.setattr(_shared_memory, "FAST_PATH_IN_C", False)
    twin: ProcessQueue[bytes] = ProcessQueue(maxsize, buffer_size=size)
    assert (type(q._fast).__name__, type(twin._fast).__name__) == ("FastPath", "_PythonFastPath")
    model = deque[bytes]()

    def same(call: Any) -> Any:
        """``call(q)``, and ``call(twin)`` with the same outcome and state."""
        outcomes = []
        for queue in (q, twin):
            try:
                outcomes.append(("returned", call(queue)))
            except (critsec.Full, critsec.Empty) as e:
                outcomes.append(("raised", type(e)))
        assert outcomes[0] == outcomes[1]
        assert list(q._state) == list(twin._state)
        assert q._memory.active == twin._memory.active
        if outcomes[0][0] == "raised":
            raise outcomes[0][1]()
        return outcomes[0][1]

    def used() -> int:
        return sum(_HEADER.size + len(pickle.dumps(i, pickle.HIGHEST_PROTOCOL)) for i in model)

    for _ in range(400):
        if rng.random() < 0.55:
            item = bytes(rng.randrange(256) for _ in range(rng.randrange(0, size // 2)))
            need = _HEADER.size + len(pickle.dumps(item, pickle.HIGHEST_PROTOCOL))
            fits = need <= size - used() and not (0 < maxsize <= len(model))
            if need > size:
                continue
            try:
                same(lambda queue: queue.put_nowait(item))  # noqa: B023 - called at once
            except critsec.Full:
                assert not fits
            else:
                assert fits
                model.append(item)
        elif model:
            assert same(lambda queue: queue.get_nowait()) == model.popleft()
        else:
            with pytest.raises(critsec.Empty):
                same(lambda queue: queue.get_nowait())
        assert q.qsize() == len(model)
    assert [same(lambda queue: queue.get_nowait()) for _ in range(len(model))] == list(model)


# -- running tasks: failures, deaths, timeouts -----------------------------------------


def test_task_error_carries_the_child_traceback(prt: ProcessesRuntime) -> None:
    before = my_children()
    with pytest.raises(critsec.TaskError) as caught:
        prt.run(critsec.task(identity, 1), critsec.task(raise_value_error, "news"))
    error = caught.value
    assert error.task == "raise_value_error"
    assert error.summary == "ValueError: bad news"
    assert 'raise ValueError(f"bad {word}")' in error.details
    assert "in raise_value_error" in error.details
    assert isinstance(error.__cause__, ValueError)
    assert error.__cause__.args == ("bad news",)
    assert_no_new_children(before)


def test_exception_that_cannot_be_rebuilt_still_reports_its_text(
    fork_rt: ProcessesRuntime,
) -> None:
    with pytest.raises(critsec.TaskError) as caught:
        fork_rt.run(raise_unrebuildable)
    assert caught.value.summary.endswith("TwoArgError: 1/2")
    assert "raise TwoArgError(1, 2)" in caught.value.details
    assert caught.value.__cause__ is None


def test_unpicklable_task_under_spawn_names_the_task() -> None:
    rt = ProcessesRuntime("spawn")
    event = rt.context.Event()

    def local_work() -> None: ...

    before = my_children()
    # The first task starts (and blocks); the second cannot be sent, and the
    # first must not be left behind.
    with pytest.raises(TypeError, match="task 'work' cannot be sent to a process") as caught:
        rt.run(critsec.task(block, event), critsec.task(local_work).named("work"))
    assert "local" in str(caught.value.__cause__)
    with pytest.raises(TypeError, match="task 'identity' cannot be sent to a process"):
        rt.run(critsec.task(identity, threading.Lock()))
    assert_no_new_children(before)


def test_unpicklable_return_value_is_a_task_error(fork_rt: ProcessesRuntime) -> None:
    with pytest.raises(critsec.TaskError) as caught:
        fork_rt.run(return_lock)
    assert caught.value.task == "return_lock"
    assert "return value cannot be sent to the parent" in caught.value.summary


def test_large_return_value_is_read_while_the_child_waits(fork_rt: ProcessesRuntime) -> None:
    # Larger than a pipe's buffer: the child can only exit once it was read.
    assert fork_rt.run(critsec.task(return_big, 4 << 20)) == [b"x" * (4 << 20)]


def test_a_child_that_dies_is_reported(prt: ProcessesRuntime) -> None:
    before = my_children()
    with pytest.raises(critsec.TaskError) as caught:
        prt.run(kill_myself)
    assert (caught.value.task, caught.value.summary) == ("kill_myself", "killed by signal SIGKILL")
    with pytest.raises(critsec.TaskError) as caught:
        prt.run(critsec.task(exit_hard, 3))
    assert (caught.value.task, caught.value.summary) == ("exit_hard", "process exited with code 3")
    assert_no_new_children(before)


def test_a_failure_stops_the_other_tasks(prt: ProcessesRuntime) -> None:
    # The blocked task waits for something the failed one would have done.
    event = prt.context.Event()
    before = my_children()
    with pytest.raises(critsec.TaskError) as caught:
        prt.run(critsec.task(block, event), fail_at_once)
    assert caught.value.task == "fail_at_once"
    assert caught.value.others == []  # the stopped task is not a failure
    assert_no_new_children(before)


def test_timeout_stops_every_task_and_names_the_unfinished(prt: ProcessesRuntime) -> None:
    event = prt.context.Event()
    before = my_children()
    with pytest.raises(TimeoutError, match=r"tasks still running after 0\.3 s: .*waiter"):
        prt.run(critsec.task(block, event).named("waiter"), timeout=0.3)
    assert_no_new_children(before)


def test_nothing_is_left_in_dev_shm() -> None:
    # No named semaphores at all (the mutexes and futexes live in the shared
    # memory), and multiprocessing's heap unlinks its files from the start:
    # nothing appears in /dev/shm even while the primitives are alive.
    before = set(Path("/dev/shm").iterdir())
    rt = ProcessesRuntime("spawn")
    lock, counter, q = rt.lock(), rt.counter(), rt.queue(buffer_size=1024)
    with pytest.raises(TimeoutError):
        rt.run(critsec.task(get_until_shutdown, q, rt.context.Event()), timeout=0.3)
    assert lock.acquire() and counter.add(1) == 1
    assert set(Path("/dev/shm").iterdir()) <= before


# -- Ctrl-C --------------------------------------------------------------------------

CTRL_C_SCRIPT = textwrap.dedent(
    """
    import os
    import signal
    import sys
    import critsec

    # As in a terminal. (A program started in the background by a shell
    # without job control inherits SIGINT ignored, and Python keeps that.)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def wait_for_item(q, name):
        os.write(1, f"ready {name}\\n".encode())  # one write: lines never interleave
        try:
            q.get()
        except KeyboardInterrupt:
            print("child interrupted", file=sys.stderr, flush=True)
            raise

    def children():
        found = []
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().rpartition(")")[2].split()[1] == str(os.getpid()):
                        found.append(pid)
            except (OSError, IndexError):
                pass
        return found

    if __name__ == "__main__":
        rt = critsec.runtime("processes", start_method=sys.argv[1])
        q = rt.queue()
        # Children so far are multiprocessing's helpers (the resource tracker
        # under spawn): they exit by themselves once this process is gone.
        print("helpers", *children(), flush=True)
        rt.run(critsec.task(wait_for_item, q, "a"), critsec.task(wait_for_item, q, "b"))
    """
)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ctrl_c_stops_every_child_quietly(tmp_path: Path, method: str) -> None:
    # A terminal's Ctrl-C signals the whole process group: the parent must
    # stop its children (which ignore it) and raise KeyboardInterrupt alone.
    script, errors = tmp_path / "ctrl_c.py", tmp_path / "stderr.txt"
    script.write_text(CTRL_C_SCRIPT)
    with errors.open("w") as stderr:
        parent = subprocess.Popen(
            [sys.executable, str(script), method],
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # its own process group, as in a terminal
            text=True,
        )
    assert parent.stdout is not None
    try:
        lines = [parent.stdout.readline() for _ in range(3)]
        assert [line.split()[:1] for line in lines] == [["helpers"], ["ready"], ["ready"]], (
            lines,
            errors.read_text(),
        )
        helpers = {int(pid) for pid in lines[0].split()[1:]}
        # And the helpers started since (run() starts the resource tracker
        # under spawn): known by pid, since one that is exiting -- it outlives
        # the parent by design -- has no command line left to be known by.
        helpers |= {pid for pid, _, _, pgrp in processes(helpers=True) if pgrp == parent.pid}
        os.killpg(parent.pid, signal.SIGINT)
        parent.wait(FOREVER)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
        parent.stdout.close()
    text = errors.read_text()
    assert parent.returncode != 0
    assert text.rstrip().endswith("KeyboardInterrupt"), text
    assert text.count("Traceback") == 1, text  # the parent's only: children were quiet
    assert "child interrupted" not in text
    live = [
        (pid, state, ppid)
        for pid, state, ppid, pgrp in processes()
        if pgrp == parent.pid and state != "Z" and pid not in helpers
    ]
    # Twice in a full CI run under coverage on 3.13 a process was left here:
    # (pid, "R", 1, "") -- the resource tracker on its way out, not yet
    # known by pid then. Say what it is, should another ever be left.
    assert live == [], [(*process, _command(process[0])) for process in live]
