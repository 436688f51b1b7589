"""Soak: processes that keep getting killed, and nothing lost.

For ``--seconds`` (default 120), 8 processes work on the processes
runtime: 2 producers and 4 consumers on an at-least-once queue, 2 adders on
a locked counter (``counter.value += 1`` under the lock: a read then a
write, which only the lock makes safe). A supervisor SIGKILLs a random
consumer or adder at random moments (``--kill-every`` seconds on average)
and starts a new one in its place. At the end it prints what was produced,
processed, duplicated and lost, whether the counter is whole, and the
recovery times: from a kill to the next redelivery of an item (a killed
consumer's), and to the next owner of the lock being told that its owner
died (a killed adder's, when it died holding it).

    python benchmarks/soak.py [--seconds 120] [--kill-every 0.5] [--start-method fork] [--seed 1]

Exit status 1 if an item was lost or the counter is not whole. Not part of
the test suite: it takes minutes, and its numbers vary with the machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import statistics
import sys
import time
from typing import Any

import critsec

#: Timestamps kept per kind of recovery (more are counted, not kept).
EVENTS = 100_000


def now_ns() -> int:
    return time.monotonic_ns()  # one clock for every process of the machine


def produce(q: Any, me: int, producers: int, limit: int, deadline: float, put: Any) -> None:
    item = me
    while item < limit and time.monotonic() < deadline:
        q.put(item)
        put.add(1)
        item += producers


def consume(q: Any, seen: Any, redelivered_at: Any, redelivered: Any, work: float) -> None:
    while True:
        try:
            delivery = q.get_delivery()
        except critsec.ShutDown:
            return
        if delivery.deliveries > 1:
            n = redelivered.add(1)
            if n <= EVENTS:
                redelivered_at[n - 1] = now_ns()
        if work:
            time.sleep(work)
        seen[delivery.item] += 1
        q.task_done()


def add(lock: Any, counter: Any, made: Any, told_at: Any, told: Any, deadline: float) -> None:
    while time.monotonic() < deadline:
        with lock:
            if lock.owner_died:
                n = told.add(1)
                if n <= EVENTS:
                    told_at[n - 1] = now_ns()
            value = counter.value
            counter.value = value + 1
            made.add(1)


def recoveries(kills: list[int], events: list[int]) -> list[float]:
    """For each event, ms since the latest kill before it."""
    out = []
    for at in events:
        before = [k for k in kills if k <= at]
        if before:
            out.append((at - before[-1]) / 1e6)
    return out


def describe(ms: list[float]) -> str:
    if not ms:
        return "none"
    return f"median {statistics.median(ms):.2f} ms, max {max(ms):.2f} ms ({len(ms)} events)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--kill-every", type=float, default=0.5, help="mean seconds between kills")
    parser.add_argument("--start-method", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-items", type=int, default=5_000_000)
    parser.add_argument(
        "--work", type=float, default=0.0001, help="seconds a consumer holds an item"
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.kill_every <= 0 or args.max_items < 1:
        parser.error("--seconds, --kill-every and --max-items must be positive")
    rng = random.Random(args.seed)
    rt = critsec.runtime("processes", start_method=args.start_method)
    ctx = rt.context
    q = rt.queue(100, delivery="at-least-once")
    lock, counter, made = rt.lock(), rt.counter(), rt.counter()
    seen = ctx.RawArray("q", args.max_items)
    redelivered_at, told_at = ctx.RawArray("q", EVENTS), ctx.RawArray("q", EVENTS)
    redelivered, told = rt.counter(), rt.counter()
    puts = [rt.counter(), rt.counter()]
    deadline = time.monotonic() + args.seconds

    def start(target: Any, *a: Any) -> Any:
        p = ctx.Process(target=target, args=a)
        p.start()
        return p

    producers = [start(produce, q, i, 2, args.max_items, deadline, puts[i]) for i in range(2)]
    consumer = (consume, q, seen, redelivered_at, redelivered, args.work)
    adder = (add, lock, counter, made, told_at, told, deadline)
    victims = {
        "consumer": [start(*consumer) for _ in range(4)],
        "adder": [start(*adder) for _ in range(2)],
    }
    again = {"consumer": consumer, "adder": adder}
    kill_times: list[int] = []
    killed: collections.Counter[str] = collections.Counter()
    print(
        f"soak: {args.seconds:.0f} s, 2 producers, 4 consumers (at-least-once), 2 adders; "
        f"a kill every {args.kill_every} s on average; Python {sys.version.split()[0]}, "
        f"start method {ctx.get_start_method()}",
        flush=True,
    )
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, rng.expovariate(1 / args.kill_every)))
        if time.monotonic() >= deadline:
            break
        kind = rng.choice(["consumer", "adder"])
        victim = rng.choice(victims[kind])
        kill_times.append(now_ns())
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        killed[kind] += 1
        victims[kind].remove(victim)
        q.reclaim()  # what a dead consumer held goes to the others now
        victims[kind].append(start(*again[kind]))
    for p in producers:
        p.join()
    q.shutdown()  # the consumers drain what is left, then stop
    for p in victims["consumer"] + victims["adder"]:
        p.join()
    produced = sum(c.value for c in puts)
    # Producer `me` put me, me + 2, me + 4, ...: one id per put it counted.
    expected = [i for me, c in enumerate(puts) for i in range(me, me + 2 * c.value, 2)]
    lost = sum(1 for i in expected if not seen[i])
    duplicates = sum(max(0, seen[i] - 1) for i in expected)
    consumed = sum(seen[i] for i in expected)
    drift = counter.value - made.value  # an adder killed between its write and made.add
    print(f"produced {produced:,}  consumed {consumed:,}  duplicates {duplicates:,}  lost {lost:,}")
    print(
        f"kills: {killed['consumer']} consumers, {killed['adder']} adders; redelivered "
        f"{redelivered.value:,}; queue recoveries {q.recoveries}"
    )
    print(
        f"counter {counter.value:,}, updates made {made.value:,} (whole if 0 <= difference "
        f"<= adders killed: {drift}); next owner told {told.value} times"
    )
    n_red, n_told = min(redelivered.value, EVENTS), min(told.value, EVENTS)
    print(
        "recovery, kill -> redelivery: " + describe(recoveries(kill_times, redelivered_at[:n_red]))
    )
    print(
        "recovery, kill -> lock handed on and told: "
        + describe(recoveries(kill_times, told_at[:n_told]))
    )
    whole = 0 <= drift <= killed["adder"]
    return 0 if lost == 0 and whole else 1


if __name__ == "__main__":
    sys.exit(main())
