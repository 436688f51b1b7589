"""Deaths, for real: the processes runtime's primitives survive SIGKILL.

Every test kills real processes with real signals, on fork and on spawn.
To kill "at any instruction" deterministically, a victim runs under
``sys.settrace`` and SIGKILLs itself at its k-th line event -- counting the
lines of critsec's own code, so k lands inside the queue's critical
sections too -- with k drawn from a seeded generator: the same kill points
every run, spread over the whole operation. No sleeps: everything waits for
a state it sees (a pipe, an event, the /proc blocked probe).
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import types
from typing import Any

import pytest

import critsec
from critsec.runtimes import _robust
from critsec.runtimes import _shared_memory as shm
from critsec.runtimes._processes import ProcessesRuntime

import interleave
from victims import FOREVER, finish, start

pytestmark = pytest.mark.skipif(not interleave.CAN_SEE_BLOCKED, reason=interleave.WHY_NOT)


# Named as in tests/test_primitives.py, for the mutation check's table.
@pytest.fixture(params=["processes-fork", "processes-spawn"])
def rt(request: pytest.FixtureRequest) -> ProcessesRuntime:
    return ProcessesRuntime(request.param.removeprefix("processes-"))


def die_at_line(k: int) -> None:
    """From now on, SIGKILL this process at its k-th line event (any frame),
    counting each step of the queue's critical sections in C (its fast
    path, ``_robust.FastPath``) as a line too."""
    left = [k]

    def line() -> None:
        left[0] -= 1
        if left[0] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)

    def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if frame.f_code is line.__code__:
            return None  # the C steps' hook: one line each, not its own lines
        if event == "line":
            line()
        return trace

    _robust.set_step_hook(line)
    sys.settrace(trace)
    frame = sys._getframe(1)  # the caller's frame counts from its next line
    frame.f_trace = trace


# -- the lock --------------------------------------------------------------------------------


def hold_until_killed(lock: Any, holding: Any) -> None:
    lock.acquire()
    holding.set()
    while True:
        signal.pause()


def wait_for_the_lock(lock: Any, probe: Any, report: Any) -> None:
    probe.announce()
    got = lock.acquire(timeout=FOREVER)
    probe.passed()
    report.send((got, lock.owner_died))
    lock.release()


def test_the_waiter_gets_a_dead_holders_lock_and_is_told(rt: ProcessesRuntime) -> None:
    lock, holding = rt.lock(), rt.context.Event()
    probe = interleave.ProcessProbe(rt.context)
    reader, writer = rt.context.Pipe(duplex=False)
    holder = start(rt, hold_until_killed, lock, holding)
    assert holding.wait(FOREVER)
    waiter = start(rt, wait_for_the_lock, lock, probe, writer)
    assert probe.wait_blocked(), "the waiter got a held lock"
    os.kill(holder.pid, signal.SIGKILL)
    assert finish(holder) == -signal.SIGKILL
    assert reader.poll(FOREVER)
    assert reader.recv() == (True, True)  # got it, and was told its owner died
    assert finish(waiter) == 0
    # Handed on for good: the next acquire finds a live owner's release.
    with lock:
        assert lock.owner_died is False


def test_multiprocessing_lock_stays_stuck_where_critsec_recovers(rt: ProcessesRuntime) -> None:
    # The contrast: the same death, the standard library's lock.
    stdlib, ours, holding = rt.context.Lock(), rt.lock(), rt.context.Event()
    for lock in (stdlib, ours):
        holding.clear()
        holder = start(rt, hold_until_killed, lock, holding)
        assert holding.wait(FOREVER)
        os.kill(holder.pid, signal.SIGKILL)
        assert finish(holder) == -signal.SIGKILL
    assert stdlib.acquire(timeout=0.2) is False  # stuck for good
    assert ours.acquire(timeout=0) is True and ours.owner_died is True
    ours.release()


def locked_increments(lock: Any, counter: Any, done: Any, n: int, k: int) -> None:
    # Each increment is a read then a write, made safe by the lock: a death
    # between the two leaves the counter one behind `done`, or exactly right.
    die_at_line(k)
    for _ in range(n):
        with lock:
            if lock.owner_died:
                done.add(1000)  # seen by the test: the repair path ran
            counter.value = counter.value + 1
        done.add(1)


def test_holders_killed_at_any_line_never_leave_the_lock_stuck(rt: ProcessesRuntime) -> None:
    rng = random.Random(7)
    lock, counter = rt.lock(), rt.counter()
    killed = 0
    for _ in range(12 if rt.start_method == "spawn" else 30):
        done = rt.counter()
        before = counter.value
        victims = [start(rt, locked_increments, lock, counter, done, 20, rng.randint(1, 150))]
        victims.append(start(rt, locked_increments, lock, counter, done, 20, rng.randint(1, 150)))
        codes = [finish(v) for v in victims]
        killed += codes.count(-signal.SIGKILL)
        assert set(codes) <= {0, -signal.SIGKILL}
        assert lock.acquire(timeout=FOREVER), "a dead holder left the lock stuck"
        lock.release()
        completed = done.value % 1000
        assert 0 <= counter.value - before - completed <= codes.count(-signal.SIGKILL)
    assert killed > 0


# -- the counter -----------------------------------------------------------------------------


def adds(counter: Any, done: Any, n: int, k: int) -> None:
    die_at_line(k)
    for _ in range(n):
        counter.add(3)
        done.add(1)


def test_adders_killed_at_any_line_leave_the_counter_whole(rt: ProcessesRuntime) -> None:
    rng = random.Random(3)
    counter = rt.counter()
    for _ in range(10 if rt.start_method == "spawn" else 25):
        done = rt.counter()
        before = counter.value
        victims = [start(rt, adds, counter, done, 30, rng.randint(1, 80)) for _ in range(2)]
        codes = [finish(v) for v in victims]
        # Each add is with or without its 3, never anything else, and never blocks.
        grown, completed = counter.value - before, done.value
        assert grown % 3 == 0
        assert 0 <= grown // 3 - completed <= codes.count(-signal.SIGKILL)
        assert counter.add(0) == counter.value


# -- the queue -------------------------------------------------------------------------------


def consume(q: Any, got: Any, k: int) -> None:
    """Take items until the queue is empty, noting each (`got` holds the
    count of items taken and noted)."""
    die_at_line(k)
    while True:
        try:
            q.get_nowait()
        except critsec.Empty:
            return
        got.add(1)
        q.task_done()


def test_consumers_killed_at_any_line_lose_only_what_they_held(rt: ProcessesRuntime) -> None:
    rng = random.Random(11)
    runs = 25 if rt.start_method == "spawn" else 50  # spawn: 0.6 s a run
    q = rt.queue(maxsize=500, buffer_size=4096)
    lost = kills = 0
    for _ in range(runs):
        got = rt.counter()
        put = 60
        for i in range(put):
            q.put(i)
        consumers = [start(rt, consume, q, got, rng.randint(1, 400)) for _ in range(3)]
        codes = [finish(c) for c in consumers]
        kills += codes.count(-signal.SIGKILL)
        # Usable at once, exact, with nothing lost but the held items.
        left = q.qsize()
        lost_now = put - got.value - left
        assert 0 <= lost_now <= codes.count(-signal.SIGKILL)
        rest = [q.get_nowait() for _ in range(left)]
        assert rest == sorted(rest) and len(set(rest)) == left  # FIFO, no duplicate
        for _ in rest:
            q.task_done()
        q.put_nowait("still works")
        assert q.get(timeout=FOREVER) == "still works"
        q.task_done()
        lost += lost_now
        # An item that died with its consumer stays unfinished (so does one
        # noted by a consumer killed before its task_done).
        assert lost <= q.unfinished_tasks <= kills
    # The kill points did land inside the queue's critical sections.
    assert q.recoveries > 0, "no kill hit a queue operation: the test proves nothing"
    assert kills > 0 and q.qsize() == 0


def produce(q: Any, me: int, sent: Any, n: int, k: int, batch: int = 0) -> None:
    die_at_line(k)
    if batch:  # put_many: a batch that fits goes in whole, or not at all
        for i in range(0, n, batch):
            q.put_many([(me, j) for j in range(i, i + batch)])
            sent.add(batch)
        return
    for i in range(n):
        q.put((me, i))
        sent.add(1)


@pytest.mark.parametrize("batch", [0, 5])
def test_producers_killed_at_any_line_leave_whole_items(rt: ProcessesRuntime, batch: int) -> None:
    rng = random.Random(5)
    q = rt.queue(buffer_size=1 << 16)
    for _ in range(10 if rt.start_method == "spawn" else 30):
        sent = [rt.counter(), rt.counter()]
        producers = [
            start(rt, produce, q, me, sent[me], 40, rng.randint(1, 300), batch) for me in range(2)
        ]
        codes = [finish(p) for p in producers]
        items = [q.get_nowait() for _ in range(q.qsize())]
        for me in range(2):
            mine = [i for who, i in items if who == me]
            # In order, each once, and the noted puts are there: at most the
            # put that was under way when it died is there too (or not).
            assert mine == list(range(len(mine)))
            under_way = max(batch, 1) if codes[me] == -signal.SIGKILL else 0
            assert len(mine) - sent[me].value in (0, under_way)
        with pytest.raises(critsec.Empty):
            q.get_nowait()


def operate_and_die(q: Any, operation: str, k: int) -> None:
    die_at_line(k)
    if operation == "put":
        q.put("new")
    else:
        q.get()
    sys.settrace(None)
    _robust.set_step_hook(None)


@pytest.mark.parametrize("in_c", [True, False], ids=["C", "Python"])
@pytest.mark.parametrize("operation", ["put", "get"])
def test_a_put_or_get_killed_at_each_step_is_done_or_not_begun(
    operation: str, in_c: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path (room, or an item, at once) killed at each of its steps
    # in turn, in C or in Python: the queue is found whole, the operation
    # done or not begun, by the next user -- who is told (recoveries).
    monkeypatch.setattr(shm, "FAST_PATH_IN_C", in_c)
    rt = ProcessesRuntime("fork")
    outcomes, recovered = set(), 0
    for k in itertools.count(1):
        q = rt.queue(4, buffer_size=256)
        q.put("old")
        code = finish(start(rt, operate_and_die, q, operation, k))
        if code == 0:  # k lies past the operation
            break
        assert code == -signal.SIGKILL
        left = [q.get_nowait() for _ in range(q.qsize())]
        assert left in (["old"], ["old", "new"] if operation == "put" else [])
        assert q.unfinished_tasks == 1 + left.count("new")
        outcomes.add(len(left))
        recovered += q.recoveries
        q.put_nowait("after")  # and the ring is usable
        assert q.get_nowait() == "after"
    assert len(outcomes) == 2, "no kill fell before, or none after, the commit"
    assert recovered > 0, "no kill fell inside the critical section"


def hammer(q: Any, n: int) -> None:
    for i in range(n):
        q.put(i)
        q.get()


def fail_after(q: Any, n: int) -> None:
    for i in range(n):
        q.put(i)
        q.get()
    raise RuntimeError("a task that fails while its siblings are inside queue operations")


def test_a_failed_run_leaves_the_queue_usable_by_the_parent_and_the_next_run(
    rt: ProcessesRuntime,
) -> None:
    # The failure stops the siblings (SIGTERM, then SIGKILL) wherever they
    # are, inside queue operations included.
    q = rt.queue(maxsize=4, buffer_size=4096)
    for _ in range(3):
        with pytest.raises(critsec.TaskError):
            rt.run(
                critsec.task(hammer, q, 10**9),
                critsec.task(hammer, q, 10**9),
                critsec.task(fail_after, q, 200),
            )
        left = q.qsize()
        assert 0 <= left <= 4
        for _ in range(left):
            q.get_nowait()
        q.put_nowait("parent")
        assert q.get(timeout=FOREVER) == "parent"
        assert rt.run(critsec.task(hammer, q, 50), critsec.task(hammer, q, 50)) == [None, None]


def test_a_timed_out_run_leaves_lock_and_queue_usable(rt: ProcessesRuntime) -> None:
    lock, q, holding = rt.lock(), rt.queue(maxsize=1, buffer_size=4096), rt.context.Event()
    with pytest.raises(TimeoutError):
        rt.run(
            critsec.task(hold_until_killed, lock, holding),
            critsec.task(hammer, q, 10**9),
            timeout=2,
        )
    # The task was stopped holding the lock -- if it had got that far (a
    # slow spawn may not have): the lock tells which.
    assert lock.acquire(timeout=FOREVER)
    assert lock.owner_died is holding.is_set()
    lock.release()
    for _ in range(q.qsize()):
        q.get_nowait()
    assert rt.run(critsec.task(hammer, q, 20)) == [None]


def die_once_woken(q: Any, probe: Any) -> None:
    """Block in ``get()``; SIGKILL this process at the first line it runs
    after the kernel woke it, before it could take the queue's mutex back."""
    import critsec.runtimes._shared_memory as shm

    wait = shm._Condition.wait.__code__

    def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if frame.f_code is not wait:
            return None
        if event == "line" and frame.f_lineno > WAKE_LINE:
            os.kill(os.getpid(), signal.SIGKILL)
        return trace

    sys.settrace(trace)
    probe.announce()
    q.get()


def get_one(q: Any, probe: Any, report: Any) -> None:
    probe.announce()
    report.send(q.get())  # no timeout: only a wake-up gets it out


def _wake_line() -> int:
    import inspect

    import critsec.runtimes._shared_memory as shm

    lines, first = inspect.getsourcelines(shm._Condition.wait)
    return first + next(i for i, line in enumerate(lines) if "futex_wait" in line)


WAKE_LINE = _wake_line()


def test_a_getter_killed_as_it_wakes_strands_no_other(rt: ProcessesRuntime) -> None:
    # Two getters sleep on an empty queue; one put wakes them. The first in
    # line dies the moment it wakes, before it takes the mutex back: a wake
    # that went to it alone (as notify() does) would leave the other asleep
    # beside the item.
    q = rt.queue(buffer_size=4096)
    first, second = interleave.ProcessProbe(rt.context), interleave.ProcessProbe(rt.context)
    reader, writer = rt.context.Pipe(duplex=False)
    victim = start(rt, die_once_woken, q, first)
    assert first.wait_blocked()
    survivor = start(rt, get_one, q, second, writer)
    assert second.wait_blocked()
    q.put("item")
    assert finish(victim) == -signal.SIGKILL
    if not reader.poll(FOREVER):
        survivor.kill()
        finish(survivor)
        pytest.fail("the surviving getter was left asleep beside the item")
    assert reader.recv() == "item"
    assert finish(survivor) == 0


# -- at-least-once delivery --------------------------------------------------------------------


def consume_deliveries(q: Any, seen: Any, again: Any, k: int, batch: int = 0) -> None:
    """Take items until none can be taken (``batch``: that many at most at a
    time, with get_many), noting each delivery (by id) and the
    redeliveries, acknowledging each after noting it."""
    if k:
        die_at_line(k)
    while True:
        try:
            deliveries = q.get_many(batch, False) if batch else [q.get_delivery(block=False)]
        except critsec.Empty:
            return
        for delivery in deliveries:
            # Announced before noted: a kill between the two must not leave a
            # duplicate unannounced (the item comes again, noted once more).
            if delivery.deliveries > 1:
                again.add(1)
            seen[delivery.id] += 1
            q.task_done()


# 75 consumers started by spawn take 12-13 s on two cores with a little
# else running; with two other test suites beside it (load 10-13) one took
# over the suite's 60 s. A hang still ends, at 3 minutes.
@pytest.mark.timeout(180)
@pytest.mark.parametrize("batch", [0, 3])
def test_at_least_once_loses_nothing_when_consumers_die_at_any_line(
    rt: ProcessesRuntime, batch: int
) -> None:
    rng = random.Random(13)
    runs = 25 if rt.start_method == "spawn" else 50  # spawn: 0.6 s a run
    q = rt.queue(maxsize=100, buffer_size=4096, delivery="at-least-once", in_flight=4)
    kills = duplicates = redelivered = 0
    for run in range(runs):
        put = 40
        first = run * put  # ids go on growing across runs
        seen = rt.context.RawArray("q", first + put)
        again = rt.counter()
        for i in range(put):
            q.put(i)
        consumers = [
            start(rt, consume_deliveries, q, seen, again, rng.randint(1, 500), batch)
            for _ in range(3)
        ]
        codes = [finish(c) for c in consumers]
        kills += codes.count(-signal.SIGKILL)
        # What the dead took and did not acknowledge is delivered again, here.
        consume_deliveries(q, seen, again, 0)
        counts = seen[first:]
        assert all(n >= 1 for n in counts), f"lost: {[i for i, n in enumerate(counts) if not n]}"
        # A duplicate is an item noted by a consumer killed before its
        # task_done: at most one per kill (a batch's other items were not
        # noted yet), and each was announced as such.
        assert sum(counts) - put <= codes.count(-signal.SIGKILL)
        assert sum(counts) - put <= again.value
        duplicates += sum(counts) - put
        redelivered += again.value
        assert q.qsize() == 0 and q.unfinished_tasks == 0
    assert kills > 0 and redelivered > 0
    assert q.recoveries > 0, "no kill hit a queue operation: the test proves nothing"


def take_and_die(q: Any) -> None:
    q.get()
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_run_hands_a_dead_tasks_item_to_the_next_getter(rt: ProcessesRuntime) -> None:
    q = rt.queue(delivery="at-least-once", buffer_size=4096)
    q.put("job")
    with pytest.raises(critsec.TaskError, match="SIGKILL"):
        rt.run(critsec.task(take_and_die, q))
    assert q.qsize() == 1  # back in the queue, at once: run told it
    delivery = q.get_delivery(block=False)
    assert delivery == ("job", 0, 2)
    q.task_done()
    with pytest.raises(ValueError, match="holds no item"):
        q.task_done()
    assert q.unfinished_tasks == 0


def test_at_most_once_is_the_default_and_a_dead_tasks_item_is_gone(
    rt: ProcessesRuntime,
) -> None:
    q = rt.queue(buffer_size=4096)
    assert q.delivery == "at-most-once"
    q.put("job")
    with pytest.raises(critsec.TaskError, match="SIGKILL"):
        rt.run(critsec.task(take_and_die, q))
    assert q.qsize() == 0 and q.unfinished_tasks == 1  # lost, and still counted


def test_delivery_arguments_are_checked() -> None:
    rt = ProcessesRuntime("fork")
    with pytest.raises(ValueError, match="delivery must be one of 'at-most-once'"):
        rt.queue(delivery="exactly-once")
    with pytest.raises(ValueError, match="in_flight must be an int >= 1"):
        rt.queue(delivery="at-least-once", in_flight=0)


def take_and_wait(q: Any, took: Any) -> None:
    q.get()
    took.set()
    while True:
        signal.pause()


def test_a_shut_down_queue_still_hands_on_what_a_dead_taker_held(rt: ProcessesRuntime) -> None:
    # Getters of a shut-down queue stop when nothing is left: an item lent
    # to a taker that died after the shutdown is not "nothing".
    q = rt.queue(delivery="at-least-once", buffer_size=4096)
    q.put("job")
    took = rt.context.Event()
    taker = start(rt, take_and_wait, q, took)
    assert took.wait(FOREVER)
    q.shutdown()
    os.kill(taker.pid, signal.SIGKILL)
    assert finish(taker) == -signal.SIGKILL
    assert q.get_delivery(block=False) == ("job", 0, 2)
    q.task_done()
    with pytest.raises(critsec.ShutDown):
        q.get_nowait()
    assert q.reclaim() == 0


INTERRUPTED_SCRIPT = """
import os, signal, sys
import critsec

def hold(lock):
    lock.acquire()
    os.write(1, b"ready\\n")
    signal.pause()

def wait_for_item(q):
    os.write(1, b"ready\\n")
    q.get()

def put_and_get(q):
    q.put("again")
    return q.get()

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rt = critsec.runtime("processes", start_method=sys.argv[1])
    lock, q = rt.lock(), rt.queue(maxsize=1)
    try:
        rt.run(critsec.task(hold, lock), critsec.task(wait_for_item, q))
    except KeyboardInterrupt:
        pass
    got = lock.acquire(timeout=10)
    q.put_nowait("parent")
    print("usable", got, lock.owner_died, q.get_nowait(), rt.run(critsec.task(put_and_get, q)))
"""


def test_an_interrupted_run_leaves_its_primitives_usable(
    rt: ProcessesRuntime, tmp_path: Any
) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED_SCRIPT)
    parent = subprocess.Popen(
        [sys.executable, str(script), rt.start_method or "fork"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    try:
        assert [parent.stdout.readline() for _ in range(2)] == ["ready\n", "ready\n"]
        os.kill(parent.pid, signal.SIGINT)  # Ctrl-C, to the parent alone
        out, _ = parent.communicate(timeout=FOREVER * 3)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert out == "usable True True parent ['again']\n"
    assert parent.returncode == 0
