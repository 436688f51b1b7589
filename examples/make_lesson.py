"""Writes examples/lesson.ipynb, the lesson on critical sections as a
notebook that runs on critsec, from the cells below:

    python examples/make_lesson.py

The notebook is committed without outputs, so that it stays small and its
diffs readable; tests/test_notebook.py checks that it is what this script
writes, then runs it top to bottom in a real kernel. Edit the cells here,
never the .ipynb by hand. Needs nbformat (pip install nbformat).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK = Path(__file__).with_name("lesson.ipynb")

# (kind, id, source): ids are fixed, so that the file is the same on every
# run and the test can find the cells whose outputs it checks.
CELLS: list[tuple[str, str, str]] = [
    (
        "md",
        "title",
        """\
# Critical sections, seen, proved and fixed

A **critical section** is a piece of code that must not run in two tasks at
the same time. The classic example is `counter += 1`: it looks like one
step, but it is two -- *read* the counter, then *write* the counter plus
one. If another task writes in between, one of the two updates is lost.

This notebook runs the classic lesson -- threads, processes, coroutines and
asyncio updating a shared counter, without and with a lock, then producers
and consumers sharing a bounded queue -- on critsec, which gives every
execution model the same lock, counter and queue, and has an *explorer*
that finds the interleaving that breaks your code. It only needs `critsec`
installed; every cell runs in a second or two.""",
    ),
    (
        "code",
        "setup",
        """\
import asyncio
import random
import sys
import threading
import time

import critsec

print("Python", sys.version)""",
    ),
    (
        "md",
        "threads-intro",
        """\
## 1. Threads without a lock

The original lesson: two threads share a global `counter` that starts at
10. One adds 1 a million times, the other subtracts 1 a million and one
times, so the right answer is **9**.""",
    ),
    (
        "code",
        "threads-lesson",
        """\
counter = 10


def task_1(iterations):
    global counter
    for _ in range(iterations):
        counter += 1  # read, then write: a critical section


def task_2(iterations):
    global counter
    for _ in range(iterations + 1):
        counter -= 1


thread_1 = threading.Thread(target=task_1, args=(1_000_000,))
thread_2 = threading.Thread(target=task_2, args=(1_000_000,))
thread_1.start()
thread_2.start()
thread_1.join()
thread_2.join()
print("counter =", counter)""",
    ),
    (
        "md",
        "threads-honest",
        """\
The original notebook printed `counter = -99559` here. On Python 3.10 or
newer you will almost certainly see **9**. The code is not correct; it is
*lucky*: CPython only lets another thread run at certain points (function
calls and the jump back at the end of a loop), and none of them falls
between the read and the write of `counter += 1`. Let us try it a few more
times to see how rare a lost update is in a real run:""",
    ),
    (
        "code",
        "threads-stress",
        """\
lost_runs = 0
for _ in range(5):
    counter = 10
    thread_1 = threading.Thread(target=task_1, args=(200_000,))
    thread_2 = threading.Thread(target=task_2, args=(200_000,))
    thread_1.start()
    thread_2.start()
    thread_1.join()
    thread_2.join()
    if counter != 9:
        lost_runs += 1
print(f"{lost_runs} of 5 runs lost an update")""",
    ),
    (
        "md",
        "threads-explore",
        """\
Luck is not a proof. On an older Python (the one the original ran on),
or with one function call between the read and the write (as a few cells
below show), updates are lost again. critsec's **explorer** does not wait
for luck: it runs the tasks itself, one bytecode at a time, and chooses
where to switch from one to the other until it finds an order that breaks
the rule `counter == 9`. `setup`
resets the counter before each try and says how many updates each task
makes (2 is plenty).""",
    ),
    (
        "code",
        "threads-explore-run",
        """\
def setup():
    global counter
    counter = 10
    return 2  # the iterations each task gets


def counted_right(iterations):
    return counter == 9


found = critsec.explore(setup, [task_1, task_2], counted_right, seed=1)
print(found)""",
    ),
    (
        "md",
        "threads-property",
        """\
Read the table from top to bottom: `task_1` reads the counter (10), the
explorer switches to `task_2`, which does all its updates, and then
`task_1` writes 11 over them. That is the lost update, found by forcing
the switch into the worst place. (The "state" in the last lines is what
`setup` returned, the 2 iterations; the counter is the global.)

Now the same work with critsec's threads runtime. Its counter is an object
and `counter.value` is a *property*: reading it is a function call, and a
function call is a place where CPython may switch threads. So here the
window between read and write is wide open, and a real run usually loses
many updates, not a rare one. (The tasks take a lock as their first
argument, as in the lesson; here they get `None` and do not use it.)""",
    ),
    (
        "code",
        "threads-runtime-nolock",
        """\
threads = critsec.runtime("threads")


def work(lock, counter, iterations, delta):
    for _ in range(iterations):
        counter.value += delta  # no lock


counter = threads.counter(10)
threads.run(
    critsec.task(work, None, counter, 200_000, +1),
    critsec.task(work, None, counter, 200_001, -1),
)
print("counter =", counter.value, "(expected 9)")""",
    ),
    (
        "md",
        "threads-lock-intro",
        """\
## 2. Threads with a lock

The fix is **mutual exclusion**: a lock that only one task can hold at a
time. The read and the write happen while holding it, so no other task
can get in between. The tasks now take the lock, and use it:""",
    ),
    (
        "code",
        "threads-lock",
        """\
def locked_work(lock, counter, iterations, delta):
    for _ in range(iterations):
        with lock:
            counter.value += delta


lock, counter = threads.lock(), threads.counter(10)
threads.run(
    critsec.task(locked_work, lock, counter, 200_000, +1),
    critsec.task(locked_work, lock, counter, 200_001, -1),
)
print("counter =", counter.value)""",
    ),
    (
        "md",
        "threads-lock-proof",
        """\
One exact run is good news, not a proof. The explorer can give one:
with `strategy="dfs"` it tries *every* order of the two tasks' steps that
switches at most twice in the middle of a task. If it runs out of orders
to try (`exhausted`) and none failed, no such order loses an update.""",
    ),
    (
        "code",
        "threads-lock-proof-run",
        """\
def setup_locked():
    return threads.lock(), threads.counter(10)


def locked_1(state):
    locked_work(*state, 2, +1)


def locked_2(state):
    locked_work(*state, 3, -1)


def exact(state):
    return state[1].value == 9  # state is (lock, counter): nothing lost


proof = critsec.explore(
    setup_locked, [locked_1, locked_2], exact, strategy="dfs", preemption_bound=2
)
print(f"failed: {proof.failed}, exhausted: {proof.exhausted}, orders tried: {proof.schedules}")""",
    ),
    (
        "md",
        "processes-intro",
        """\
## 3. Processes

Processes do not share memory by default, and on a machine with several
cores they really run at the same time. critsec's processes runtime puts
the lock and the counter in shared memory, and the *same* task functions
run unchanged -- only the runtime's name changes. (In a notebook the tasks
are defined in the notebook itself, which only the `fork` start method can
hand to a child process; in a script with the functions at module level,
any start method works.)

Without the lock:""",
    ),
    (
        "code",
        "processes-nolock",
        """\
processes = critsec.runtime("processes", start_method="fork")

counter = processes.counter(10)
processes.run(
    critsec.task(work, None, counter, 200_000, +1),
    critsec.task(work, None, counter, 200_001, -1),
)
print("counter =", counter.value, "(expected 9)")""",
    ),
    (
        "md",
        "processes-lock-intro",
        """\
When the two processes overlap, two cores write the same number at the
same time and many updates are lost. (If one process happened to finish
before the other started, you would see 9: run the cell again.) With the
lock, every run is exact, and slower:""",
    ),
    (
        "code",
        "processes-lock",
        """\
lock, counter = processes.lock(), processes.counter(10)
processes.run(
    critsec.task(locked_work, lock, counter, 200_000, +1),
    critsec.task(locked_work, lock, counter, 200_001, -1),
)
print("counter =", counter.value)""",
    ),
    (
        "md",
        "coroutines-intro",
        """\
## 4. Coroutines

A coroutine -- here a *generator* function -- runs until it reaches a
`yield`, and only there does it give the turn to another task. Nothing can
interrupt it anywhere else. The original notebook's cell for this did not
run: it had a stray indent (a syntax error), called the tasks without their
arguments, had no counter object with a `.value`, resumed each generator
only once instead of taking turns, and printed a variable `a` that did not
exist. With critsec's coroutines runtime, `run` is the scheduler: it
resumes each task in turn, at each `yield`.

First the lesson's version: the task yields *before* the update, never in
the middle of it. No lock is needed, and the answer is exact:""",
    ),
    (
        "code",
        "coroutines-lesson",
        """\
coroutines = critsec.runtime("coroutines")  # round-robin: each task in turn


def yield_then_update(lock, counter, iterations, delta):
    for _ in range(iterations):
        yield  # the only place another task can run
        counter.value += delta


counter = coroutines.counter(10)
coroutines.run(
    critsec.task(yield_then_update, None, counter, 100_000, +1),
    critsec.task(yield_then_update, None, counter, 100_001, -1),
)
print("counter =", counter.value)""",
    ),
    (
        "md",
        "coroutines-inside",
        """\
But a coroutine that waits *inside* its critical section -- reads, then
yields (say, to wait for the network), then writes -- has the same
problem as threads, and here it is not rare at all: taking turns strictly,
every task reads before any of them writes, so each write undoes the
other task's. The task that writes last (the one that subtracts, which
runs one step longer) wins: 10 - 100,001.""",
    ),
    (
        "code",
        "coroutines-inside-nolock",
        """\
def update_across_yield(lock, counter, iterations, delta):
    for _ in range(iterations):
        value = counter.value
        yield  # another task runs here, in the middle of the update
        counter.value = value + delta


counter = coroutines.counter(10)
coroutines.run(
    critsec.task(update_across_yield, None, counter, 100_000, +1),
    critsec.task(update_across_yield, None, counter, 100_001, -1),
)
print("counter =", counter.value, "(expected 9)")""",
    ),
    (
        "md",
        "coroutines-lock-intro",
        """\
The fix is a lock again. Taking a lock may mean waiting, and a generator
can only wait by yielding, so it is taken with `yield from`:
`with (yield from lock):`. A task that finds the lock held yields until
it is free.""",
    ),
    (
        "code",
        "coroutines-lock",
        """\
def locked_across_yield(lock, counter, iterations, delta):
    for _ in range(iterations):
        with (yield from lock):
            value = counter.value
            yield  # others may run, but none can take the lock
            counter.value = value + delta


lock, counter = coroutines.lock(), coroutines.counter(10)
coroutines.run(
    critsec.task(locked_across_yield, lock, counter, 100_000, +1),
    critsec.task(locked_across_yield, lock, counter, 100_001, -1),
)
print("counter =", counter.value)""",
    ),
    (
        "md",
        "asyncio-intro",
        """\
## 5. asyncio

`async def` functions are coroutines too, switching only at `await`. The
same two versions, with `await asyncio.sleep(0)` standing for any wait in
the middle of the update. A notebook already runs an event loop, so we
`await rt.run_async(...)` in it; in a script, `rt.run(...)` starts one.""",
    ),
    (
        "code",
        "asyncio-nolock",
        """\
aio = critsec.runtime("asyncio")


async def async_update(lock, counter, iterations, delta):
    for _ in range(iterations):
        value = counter.value
        await asyncio.sleep(0)  # another task runs here
        counter.value = value + delta


counter = aio.counter(10)
await aio.run_async(
    critsec.task(async_update, None, counter, 10_000, +1),
    critsec.task(async_update, None, counter, 10_001, -1),
)
print("counter =", counter.value, "(expected 9)")""",
    ),
    (
        "md",
        "asyncio-lock-intro",
        """\
The same loss as with generators, by the same arithmetic (10 - 10,001).
With `async with lock:` a task that finds the lock held waits for it,
letting the others run:""",
    ),
    (
        "code",
        "asyncio-lock",
        """\
async def async_locked_update(lock, counter, iterations, delta):
    for _ in range(iterations):
        async with lock:
            value = counter.value
            await asyncio.sleep(0)
            counter.value = value + delta


lock, counter = aio.lock(), aio.counter(10)
await aio.run_async(
    critsec.task(async_locked_update, lock, counter, 10_000, +1),
    critsec.task(async_locked_update, lock, counter, 10_001, -1),
)
print("counter =", counter.value)""",
    ),
    (
        "md",
        "queue-intro",
        """\
## 6. Producers and consumers with a bounded queue

A queue lets tasks hand work to each other. A *bounded* queue holds at
most `maxsize` items: a producer that finds it full must wait, and a
consumer that finds it empty must wait. The original notebook checked
`q.full()` and `q.empty()` in a busy loop; that burns a core, and with
more than one producer "not full" may no longer be true by the time it
puts. Here `put` and `get` simply **block** until they can go on, and when
the producers are done, `shutdown()` tells the consumers there is nothing
more to come: their `get` raises `critsec.ShutDown` once the queue is
empty.""",
    ),
    (
        "code",
        "queue-threads",
        """\
def say(line):
    # One write per line, so that lines printed by several processes never mix.
    print(line + "\\n", end="", flush=True)


def producer(q, finished, name, items, producers):
    longest = 0
    for i in range(items):
        item = f"{name}-{i}"
        q.put(item)  # waits while the queue is full
        longest = max(longest, q.qsize())
        say(f"{name} put {item}")
        time.sleep(random.random() / 100)
    if finished.add(1) == producers:  # the last producer to finish...
        q.shutdown()  # ...says that nothing more will come
    return longest


def consumer(q, name):
    taken = []
    while True:
        try:
            item = q.get()  # waits while the queue is empty
        except critsec.ShutDown:  # shut down, and nothing left
            return taken
        taken.append(item)
        say(f"    {name} got {item}")
        time.sleep(random.random() / 50)  # consumers are slower: the queue fills


def pipeline(runtime, maxsize=3, items=6):
    q, finished = runtime.queue(maxsize), runtime.counter(0)
    p1, p2, c1, c2 = runtime.run(
        critsec.task(producer, q, finished, "P1", items, 2),
        critsec.task(producer, q, finished, "P2", items, 2),
        critsec.task(consumer, q, "C1"),
        critsec.task(consumer, q, "C2"),
        timeout=60,
    )
    produced = [f"{name}-{i}" for name in ("P1", "P2") for i in range(items)]
    print()
    print(f"consumed {len(c1 + c2)} of {len(produced)} items,", end=" ")
    print(f"each exactly once: {sorted(c1 + c2) == sorted(produced)}")
    print(f"longest queue seen: {max(p1, p2)} (maxsize {maxsize})")


pipeline(threads)""",
    ),
    (
        "md",
        "queue-processes-intro",
        """\
The same functions, with processes (the counter that tells the last
producer is critsec's, shared by the processes like the queue):""",
    ),
    (
        "code",
        "queue-processes",
        """\
pipeline(processes)""",
    ),
    (
        "md",
        "explorer-intro",
        """\
## 7. Watch the lost update, step by step

Back to the first problem. The explorer's result is more than text: shown
as the last thing in a cell, it becomes a small **player**, one lane per
task and one row per step. Use the buttons (or the arrow keys after a
click) to step through the interleaving and watch where the second task
slips in between the first one's read and write.""",
    ),
    (
        "code",
        "explorer-player",
        """\
found""",
    ),
    (
        "md",
        "explorer-replay-intro",
        """\
The result carries a `schedule` token. `critsec.replay` runs exactly that
interleaving again -- the same lost update, every time -- which is what
you want when you have fixed the code and need to check the fix against
the very order that broke it:""",
    ),
    (
        "code",
        "explorer-replay",
        """\
again = critsec.replay(setup, [task_1, task_2], counted_right, found.schedule)
print(f"the same schedule again: counter = {counter}, failed: {again.failed}")""",
    ),
    (
        "md",
        "explorer-proof-intro",
        """\
And the locked version from section 2, shown the same way: the explorer
says it found no failing order.""",
    ),
    (
        "code",
        "explorer-proof",
        """\
proof""",
    ),
    (
        "md",
        "summary",
        """\
## What to remember

* `counter += 1` is a read and a write. Between them another task can
  run, and its update is lost. That code is a **critical section**.
* Whether you *see* it depends on where the runtime switches: rarely (or
  never) with threads on modern CPython, all the time with processes on
  several cores, every time with coroutines that wait in the middle.
  Not seeing it proves nothing.
* A **lock** around the critical section fixes it, for threads, processes,
  coroutines (`with (yield from lock):`) and asyncio (`async with lock:`).
* A **bounded queue** with blocking `put` and `get` lets producers and
  consumers wait for each other without a busy loop; `shutdown()` ends the
  stream.
* The **explorer** finds the bad interleaving on purpose, shows it, replays
  it, and can prove a fix within a bound.""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The lesson notebook, without outputs."""
    cells = []
    for kind, cell_id, source in CELLS:
        make = new_markdown_cell if kind == "md" else new_code_cell
        cells.append(make(source, id=cell_id))
    notebook = new_notebook(cells=cells)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return notebook


def main() -> int:
    notebook = build()
    nbformat.validate(notebook)
    NOTEBOOK.write_text(nbformat.writes(notebook), encoding="utf-8")
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
