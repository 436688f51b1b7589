"""run(timeout=...) on the cooperative runtimes, for tasks that never yield,
and the watchdog that makes it work (critsec._watchdog).

No test waits for time to pass to see whether something happened: a
watchdog's deadline either ends a loop that would otherwise never end, or
the test synchronises with the watchdog's own looks through an event.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Generator
from typing import Any

import pytest

import critsec
from critsec._watchdog import Overtime, Watchdog, library_code

Gen = Generator[Any, None, Any]


def test_a_loop_that_never_yields_is_interrupted() -> None:
    # Made before the block: on a loaded machine the deadline can pass while
    # __enter__ still starts the watchdog's thread, and the exception then
    # strikes before `as` would have bound the name.
    watchdog = Watchdog(0.01)
    with pytest.raises(Overtime), watchdog:
        while True:
            pass
    assert watchdog.fired


def test_a_block_that_ends_in_time_is_never_interrupted_later() -> None:
    for _ in range(20):  # the watchdog's thread must have nothing left to do
        with Watchdog(30) as watchdog:
            pass
        assert not watchdog.fired
    with Watchdog(None) as watchdog:
        pass
    assert not watchdog.fired


class _Looks(Watchdog):
    """A watchdog that tells the test when it found spared code running."""

    def __init__(self, seconds: float, spared: list[str], library: bool = False) -> None:
        super().__init__(seconds, spared, library=library)
        self.saw_spared = threading.Event()

    def _in_spared_code(self) -> bool:
        spared = super()._in_spared_code()
        if spared:
            self.saw_spared.set()
        return spared


def test_spared_code_is_left_alone_until_the_thread_leaves_it() -> None:
    # Event.wait is threading.py's code: spared here. The watchdog looks at
    # the deadline, finds the thread inside it, and must wait; only once the
    # thread is back in this function may the exception strike.
    watchdog = _Looks(0.01, spared=[threading.__file__])
    left_spared_code = False
    with pytest.raises(Overtime), watchdog:
        watchdog.saw_spared.wait()
        left_spared_code = True
        while True:
            pass
    assert left_spared_code


def test_the_standard_library_is_spared_when_asked() -> None:
    # Cut short inside the standard library, an event loop's close() left
    # the loop open and its socket unclosed: the runtimes spare it all.
    assert library_code(socket.__file__) and library_code(asyncio.__file__)
    assert library_code("<frozen importlib._bootstrap>")
    assert not library_code(__file__) and not library_code(critsec.__file__)
    assert not library_code(pytest.__file__)  # an installed package is not the library
    watchdog = _Looks(0.01, spared=[], library=True)
    left_library_code = False
    with pytest.raises(Overtime), watchdog:
        watchdog.saw_spared.wait()  # threading.py: the standard library's
        left_library_code = True
        while True:
            pass
    assert left_library_code


def test_the_block_ending_disarms_it() -> None:
    # The deadline passes while the thread is in spared code; the block
    # ends there: nothing may strike afterwards.
    watchdog = _Looks(0.01, spared=[threading.__file__])
    with watchdog:
        watchdog.saw_spared.wait()
    total = sum(range(200_000))  # a loop, where a stray exception would strike
    assert total == 199_999 * 100_000
    assert not watchdog.fired


def _bump(state: dict[str, int]) -> None:
    state["n"] += 1


def test_a_fired_watchdog_leaves_the_interpreter_as_it_was() -> None:
    # Once withdrawn through the C API, a request left Python 3.11's
    # interpreter-wide "exception pending" flag set for good, and the next
    # exploration of thread tasks hung.
    with pytest.raises(Overtime), Watchdog(0.01):
        while True:
            pass
    result = critsec.explore(
        lambda: {"n": 0}, [_bump, _bump], lambda s: s["n"] == 2, strategy="dfs"
    )
    assert result.failed and result.kind == "invariant"


# -- the runtimes ---------------------------------------------------------------


def test_coroutines_honour_the_timeout_of_a_task_that_never_yields() -> None:
    rt = critsec.runtime("coroutines")
    closed = []

    def spinner() -> Gen:
        yield
        while True:  # no switch point: the scheduler never sees the clock
            pass

    def waiter() -> Gen:
        try:
            while True:
                yield
        finally:
            closed.append("waiter")

    with pytest.raises(TimeoutError, match=r"^tasks still running after 0\.05 s: spinner, waiter$"):
        rt.run(spinner, waiter, timeout=0.05)
    assert closed == ["waiter"]


def test_asyncio_honours_the_timeout_of_a_task_that_never_awaits() -> None:
    rt = critsec.runtime("asyncio")

    async def spinner() -> None:
        while True:  # blocks the event loop: asyncio.timeout() cannot fire
            pass

    async def quick() -> int:
        return 1

    async def sleeper() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError, match=r"^tasks still running after 0\.05 s: ") as caught:
        rt.run(quick, spinner, sleeper, timeout=0.05)
    unfinished = str(caught.value).rpartition(": ")[2].split(", ")
    assert sorted(unfinished) == ["sleeper", "spinner"]
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no Overtime shown


def _spin_on_queue(q: Any) -> None:
    # A tight loop through the queue's own code: the watchdog must not cut
    # one of its updates in half (qsize and the unfinished count).
    while True:
        q.put_nowait(1)
        q.get_nowait()
        q.task_done()


def test_a_coroutines_queue_is_whole_after_a_task_spinning_on_it_timed_out() -> None:
    rt = critsec.runtime("coroutines")
    q = rt.queue()

    def spin() -> Gen:
        yield
        _spin_on_queue(q)

    def check() -> Gen:
        yield from q.join()
        return q.qsize()

    for _ in range(5):
        with pytest.raises(TimeoutError):
            rt.run(spin, timeout=0.02)
        assert rt.run(check, timeout=5) == [0]


def test_an_asyncio_queue_is_whole_after_a_task_spinning_on_it_timed_out() -> None:
    rt = critsec.runtime("asyncio")
    q = rt.queue()

    async def spin() -> None:
        _spin_on_queue(q)

    async def check() -> int:
        await q.join()
        return q.qsize()

    for _ in range(5):
        with pytest.raises(TimeoutError):
            rt.run(spin, timeout=0.02)
        assert rt.run(check, timeout=5) == [0]
