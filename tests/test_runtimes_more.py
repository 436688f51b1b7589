"""Runtimes at their edges: how failures are reported (several at once, an
exception or a return value that does not survive pickling, a death by a
signal that has no name), what a timed-out thread run says, which task
functions the cooperative runtimes refuse before running anything, and the
reprs users see in a debugger.

Tasks for the processes runtime are module-level functions (``spawn``
pickles them by name).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Generator
from typing import Any

import pytest

import critsec
from critsec.runtimes._processes import ProcessesRuntime

# -- tasks -------------------------------------------------------------------------


def fail(word: str) -> None:
    raise ValueError(f"bad {word}")


class Unpicklable(Exception):
    """An exception holding a lock: it cannot travel back to the parent."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = threading.Lock()


def raise_unpicklable() -> None:
    raise Unpicklable("held on to a lock")


def _refuse_to_load() -> None:
    raise RuntimeError("not in this process")


class ComesBackBroken:
    """Pickles fine; unpickling it in the parent fails."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_refuse_to_load, ())


def return_broken() -> ComesBackBroken:
    return ComesBackBroken()


#: A real-time signal: no name in ``signal.Signals``, and it ends a process by default.
NAMELESS = signal.SIGRTMIN + 6


def die_by_a_nameless_signal() -> None:
    os.kill(os.getpid(), NAMELESS)


# -- reporting failures --------------------------------------------------------------


def test_every_failed_task_is_named_and_the_first_has_its_traceback() -> None:
    # Threads cannot be stopped: every task runs to its end, and each failure counts.
    rt = critsec.runtime("threads")
    with pytest.raises(critsec.TaskError) as caught:
        rt.run(
            critsec.task(fail, "first").named("first"),
            critsec.task(fail, "second").named("second"),
        )
    error = caught.value
    assert error.task == "first"
    assert [other.task for other in error.others] == ["second"]
    text = str(error).splitlines()
    assert text[0].startswith("task 'first' failed: ")
    assert text[1] == "Traceback (most recent call last):"
    assert text[-1] == "(also failed: 'second')"


def test_a_thread_run_that_times_out_names_the_tasks_still_running() -> None:
    rt = critsec.runtime("threads")
    held, got_it = threading.Lock(), threading.Event()
    held.acquire()

    def waiter() -> None:
        with held:
            got_it.set()

    with pytest.raises(TimeoutError, match=r"^tasks still running after 0\.05 s: waiter$"):
        rt.run(critsec.task(waiter).named("waiter"), timeout=0.05)
    held.release()  # the abandoned thread goes on, and ends
    assert got_it.wait(timeout=30)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_an_exception_that_cannot_be_pickled_still_reports_its_text(start_method: str) -> None:
    rt = critsec.runtime("processes", start_method=start_method)
    with pytest.raises(critsec.TaskError) as caught:
        rt.run(raise_unpicklable)
    assert caught.value.summary.endswith("Unpicklable: held on to a lock")
    assert 'raise Unpicklable("held on to a lock")' in caught.value.details
    assert caught.value.__cause__ is None  # the exception itself stayed in the child


def test_a_return_value_that_cannot_be_unpickled_is_a_task_error() -> None:
    rt = critsec.runtime("processes", start_method="fork")
    with pytest.raises(critsec.TaskError) as caught:
        rt.run(return_broken)
    assert caught.value.task == "return_broken"
    assert caught.value.summary == (
        "its return value cannot be unpickled in the parent: RuntimeError: not in this process"
    )


def test_a_death_by_a_signal_without_a_name_gives_its_number() -> None:
    rt = critsec.runtime("processes", start_method="fork")
    with pytest.raises(critsec.TaskError) as caught:
        rt.run(die_by_a_nameless_signal)
    assert caught.value.summary == f"killed by signal {int(NAMELESS)}"


# -- what the cooperative runtimes refuse, before running anything ----------------------


def plain(state: object) -> None:
    raise AssertionError("a refused task must not run")


class Worker:
    def plain(self) -> None:
        raise AssertionError("a refused task must not run")


async def coroutine_function() -> None:
    raise AssertionError("never awaited")


def test_a_plain_function_is_refused_through_a_partial_or_a_method() -> None:
    rt = critsec.runtime("coroutines")
    with pytest.raises(TypeError, match="is not a generator function: the coroutines runtime"):
        rt.run(functools.partial(plain, None))
    with pytest.raises(TypeError, match="is not a generator function"):
        rt.run(Worker().plain)


def test_a_callable_returning_a_coroutine_is_refused_and_the_coroutine_closed() -> None:
    # filterwarnings = error: a coroutine left unawaited would fail this test.
    rt = critsec.runtime("coroutines")
    with pytest.raises(TypeError, match="returned coroutine, not what a generator function"):
        rt.run(lambda: coroutine_function())


def test_yielding_a_wait_without_yield_from_says_where_in_nested_generators() -> None:
    rt = critsec.runtime("coroutines")
    q = rt.queue()

    def helper() -> Generator[Any, Any, None]:
        yield q.get()  # the mistake: a generator yielded, not waited on

    def task() -> Generator[Any, Any, None]:
        yield from helper()

    line = helper.__code__.co_firstlineno + 1
    with pytest.raises(TypeError) as caught:
        rt.run(task)
    message = str(caught.value)
    assert f"test_runtimes_more.py:{line} (did you mean `yield from`?)" in message


# -- argument checks and reprs ----------------------------------------------------------


@pytest.mark.parametrize("name", ["threads", "processes"])
def test_a_negative_timeout_is_refused_like_queue_queue(name: str) -> None:
    q = critsec.runtime(name).queue()
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.put(1, timeout=-1)


def test_reprs_say_what_and_in_which_state() -> None:
    assert repr(critsec.runtime("threads")) == "critsec.runtime('threads')"
    counter = critsec.runtime("threads").counter(3)
    assert repr(counter) == f"<{type(counter).__name__} value=3>"
    asyncio_lock = critsec.runtime("asyncio").lock()
    assert repr(asyncio_lock) == "<AsyncioLock unlocked>"
    processes = critsec.runtime("processes")
    assert isinstance(processes, ProcessesRuntime)
    q = processes.queue(2, buffer_size=4096)
    q.put_nowait("x")
    assert repr(q) == ("<ProcessQueue maxsize=2 qsize=1 buffer_size=4096 delivery='at-most-once'>")
