"""One vocabulary across runtimes: the protocols, the task kinds, the names,
the deadlock report, the counter's checks, the standard library's argument
rules -- the same on every runtime and in the explorer."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import queue
import types
import warnings
from collections.abc import Callable, Generator
from typing import Any

import pytest

import critsec
from critsec import explorer

BLOCKING = ["threads", "processes"]
ALL = ["threads", "processes", "coroutines", "asyncio"]


# -- __all__ of every public module ------------------------------------------------


def _public_modules() -> list[str]:
    names = ["critsec"]
    for info in pkgutil.walk_packages(critsec.__path__, "critsec."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def test_the_public_modules_are_the_expected_ones() -> None:
    assert set(_public_modules()) == {
        "critsec",
        "critsec.cli",
        "critsec.explorer",
        "critsec.lab",
        "critsec.runtimes",
    }


@pytest.mark.parametrize("name", _public_modules())
def test_all_matches_the_real_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "__all__ names something twice"
    missing = {n for n in exported if not hasattr(module, n)}
    assert not missing, f"{name}.__all__ names what is not there: {missing}"
    # A package's public names are all exports (it re-exports from private
    # modules); a module's are the functions and classes it defines.
    package = hasattr(module, "__path__")
    public = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and not isinstance(value, types.ModuleType)
        and n not in ("annotations", "TYPE_CHECKING")
        and (package or getattr(value, "__module__", None) == name)
    }
    assert public - exported == set(), f"public in {name} but not in __all__"


def test_the_explorer_functions_are_at_the_top_level() -> None:
    from critsec import check, explore, replay

    assert critsec.explore is explore is explorer.explore
    assert replay is explorer.replay and check is explorer.check
    assert callable(critsec.explore)


# -- protocols ----------------------------------------------------------------------

PROTOCOLS: dict[str, tuple[type[Any], type[Any]]] = {
    "threads": (critsec.Lock, critsec.Queue),
    "processes": (critsec.Lock, critsec.Queue),
    "coroutines": (critsec.GeneratorLock, critsec.GeneratorQueue),
    "asyncio": (critsec.AsyncLock, critsec.AsyncQueue),
}


@pytest.mark.parametrize("name", ALL)
def test_primitives_satisfy_their_protocols(name: str) -> None:
    rt = critsec.runtime(name)
    lock_protocol, queue_protocol = PROTOCOLS[name]
    assert isinstance(rt.lock(), lock_protocol)
    assert isinstance(rt.queue(), queue_protocol)
    assert isinstance(rt.counter(), critsec.Counter)


def test_every_protocol_method_states_its_contract() -> None:
    for protocol in (
        critsec.Lock,
        critsec.Counter,
        critsec.Queue,
        critsec.GeneratorLock,
        critsec.GeneratorQueue,
        critsec.AsyncLock,
        critsec.AsyncQueue,
    ):
        assert protocol.__doc__
        members = [a for a in dir(protocol) if not a.startswith("_")]
        assert members
        for attr in members:  # inherited ones too
            member = inspect.getattr_static(protocol, attr)
            doc = member.fget.__doc__ if isinstance(member, property) else member.__doc__
            assert doc, f"{protocol.__name__}.{attr} has no contract"


# -- task kinds -----------------------------------------------------------------------


def a_generator() -> Generator[None, None, None]:
    yield


async def an_async() -> None:
    pass


def plain() -> int:
    return 1


@pytest.mark.parametrize("name", BLOCKING)
@pytest.mark.parametrize(
    ("fn", "runs_on"), [(a_generator, "coroutines"), (an_async, "asyncio")], ids=["gen", "async"]
)
def test_a_blocking_runtime_refuses_generator_and_async_tasks(
    name: str, fn: Any, runs_on: str
) -> None:
    rt = critsec.runtime(name)
    with pytest.raises(TypeError) as caught:
        rt.run(plain, fn)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"task {fn.__name__!r} is ")
    assert f"critsec.runtime({runs_on!r})" in message


@pytest.mark.parametrize("name", ["coroutines", "asyncio"])
def test_a_cooperative_runtime_refuses_a_plain_function(name: str) -> None:
    with pytest.raises(TypeError) as caught:
        critsec.runtime(name).run(plain)
    message = str(caught.value)
    assert "\n" not in message and "is not " in message
    assert "critsec.runtime('threads')" in message


@pytest.mark.parametrize("name", BLOCKING)
def test_a_lambda_returning_a_generator_fails_the_task_instead_of_passing(name: str) -> None:
    # Only a call can tell what a lambda is; its result gives it away.
    with pytest.raises(critsec.TaskError) as caught:
        critsec.runtime(name).run(critsec.task(lambda: a_generator()).named("lazy"))
    assert caught.value.task == "lazy"
    assert "returned a generator, so none of its body ran" in caught.value.summary
    assert "critsec.runtime('coroutines')" in caught.value.summary


def test_the_explorer_uses_the_same_kinds() -> None:
    with pytest.raises(TypeError, match="tasks of different kinds cannot run together"):
        critsec.explore(dict, [plain, a_generator], lambda state: True)
    assert critsec.explore(dict, [lambda state: None], lambda state: True).failed is False


# -- a wait without `yield from` ------------------------------------------------------


def forgets_yield_from(lock: Any) -> Generator[Any, None, str]:
    lock.acquire()  # the mistake: waits for nothing, takes nothing
    yield
    return "unprotected"


def test_a_forgotten_yield_from_fails_the_task_naming_the_line() -> None:
    rt = critsec.runtime("coroutines")
    with pytest.raises(critsec.TaskError) as caught:
        rt.run(critsec.task(forgets_yield_from, rt.lock()))
    assert isinstance(caught.value.__cause__, TypeError)
    summary = caught.value.summary
    assert "lock.acquire() was called without `yield from`" in summary
    line = forgets_yield_from.__code__.co_firstlineno + 1
    assert f"test_vocabulary.py:{line}" in summary


def forgets_at_the_end(q: Any) -> Generator[Any, None, None]:
    yield
    q.get()  # the task's last line: caught when it ends


def test_a_forgotten_yield_from_on_the_last_line_is_caught_when_the_task_ends() -> None:
    rt = critsec.runtime("coroutines")
    with pytest.raises(critsec.TaskError, match=r"q\.get\(\) was called without `yield from`"):
        rt.run(critsec.task(forgets_at_the_end, rt.queue()))


def yields_instead_of_yield_from(q: Any) -> Generator[Any, None, None]:
    yield q.put(1)


def test_yield_instead_of_yield_from_gets_a_hint() -> None:
    rt = critsec.runtime("coroutines")
    with pytest.raises(TypeError, match="did you mean `yield from`"):
        rt.run(critsec.task(yields_instead_of_yield_from, rt.queue()))


def test_a_forgotten_yield_from_outside_any_run_warns() -> None:
    lock = critsec.runtime("coroutines").lock()
    with pytest.warns(RuntimeWarning, match="without `yield from`"):
        lock.acquire()
    assert not lock.locked()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in lock.acquire():  # used: no warning
            pass
    assert lock.locked()


def test_the_explorer_reports_a_forgotten_yield_from() -> None:
    def setup() -> Any:
        return critsec.runtime("coroutines").lock()

    def task(lock: Any) -> Generator[Any, None, None]:
        lock.acquire()
        yield

    result = critsec.explore(setup, [task], lambda lock: True, seed=0)
    assert result.failed and result.kind == "exception"
    assert "lock.acquire() was called without `yield from`" in result.message


# -- names -------------------------------------------------------------------------------


def named(n: int) -> int:
    return n


def other(n: int) -> int:
    return n


def test_run_and_explorer_name_tasks_by_one_rule() -> None:
    def failing(n: int) -> int:
        raise ValueError(n)

    with pytest.raises(critsec.TaskError) as caught:
        critsec.runtime("threads").run(
            critsec.task(failing, 1), critsec.task(other, 2), critsec.task(failing, 3)
        )
    assert [caught.value.task] + [e.task for e in caught.value.others] == ["failing#1", "failing#2"]

    def task(state: Any) -> None: ...

    def task_b(state: Any) -> None: ...

    result = critsec.explore(dict, [task, task_b, task], lambda s: True, seed=0)
    assert result.task_names == ("task#1", "task_b", "task#2")
    from critsec._task import unique_names

    assert unique_names(["a", "b", "a"]) == ["a#1", "b", "a#2"]


# -- deadlocks: one phrasing -------------------------------------------------------------


def waits_forever(q: Any) -> Generator[Any, None, None]:
    yield from q.get()


def test_the_coroutines_runtime_words_a_deadlock_like_the_explorer() -> None:
    rt = critsec.runtime("coroutines")
    with pytest.raises(critsec.DeadlockError) as caught:
        rt.run(critsec.task(waits_forever, rt.queue()))
    first, second = str(caught.value).splitlines()
    assert first.startswith("deadlock: no task can run: 'waits_forever' waits for queue not empty")
    assert second.startswith("task 'waits_forever' waits for queue not empty")
    assert "test_vocabulary.py" in second and "yield from q.get()" in second
    assert caught.value.waits[0].task == "waits_forever"


def _lock_order(kind: str) -> tuple[Any, list[Any]]:
    if kind == "blocking":
        import threading

        def setup() -> Any:
            return types.SimpleNamespace(a=threading.Lock(), b=threading.Lock())

        def ab(s: Any) -> None:
            with s.a, s.b:
                pass

        def ba(s: Any) -> None:
            with s.b, s.a:
                pass

        return setup, [ab, ba]
    if kind == "generator":
        rt = critsec.runtime("coroutines")

        def gsetup() -> Any:
            return types.SimpleNamespace(a=rt.lock(), b=rt.lock())

        def gab(s: Any) -> Generator[Any, None, None]:
            with (yield from s.a):
                yield
                with (yield from s.b):
                    pass

        def gba(s: Any) -> Generator[Any, None, None]:
            with (yield from s.b):
                yield
                with (yield from s.a):
                    pass

        return gsetup, [gab, gba]

    def asetup() -> Any:
        return types.SimpleNamespace(a=asyncio.Lock(), b=asyncio.Lock())

    async def aab(s: Any) -> None:
        async with s.a:
            await asyncio.sleep(0)
            async with s.b:
                pass

    async def aba(s: Any) -> None:
        async with s.b:
            await asyncio.sleep(0)
            async with s.a:
                pass

    return asetup, [aab, aba]


@pytest.mark.parametrize("kind", ["blocking", "generator", "async"])
def test_every_explorer_driver_words_a_deadlock_the_same_way(kind: str) -> None:
    setup, tasks = _lock_order(kind)
    result = critsec.explore(setup, tasks, lambda s: True, strategy="dfs", seed=0)
    assert result.kind == "deadlock"
    a, b = result.task_names
    assert result.message.startswith(f"deadlock: no task can run: {a!r} waits for ")
    assert f"; {b!r} waits for " in result.message
    detail = result.outcome.detail.splitlines() if result.outcome else []
    assert [line.split(" waits for ")[0] for line in detail] == [f"task {a!r}", f"task {b!r}"]
    assert all(" at " in line and ".py:" in line for line in detail)


# -- the counter's checks ----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_every_counter_refuses_what_is_not_an_int(name: str) -> None:
    counter = critsec.runtime(name).counter(1)
    for bad in ("x", 1.5, True, None):
        with pytest.raises(TypeError, match="a counter holds an int"):
            counter.value = bad  # type: ignore[assignment]
        with pytest.raises(TypeError, match="a counter holds an int"):
            counter.add(bad)  # type: ignore[arg-type]
    assert counter.value == 1


@pytest.mark.parametrize("name", ALL)
def test_only_an_int64_counter_overflows(name: str) -> None:
    counter = critsec.runtime(name).counter(2**63 - 1)
    if name == "processes":
        with pytest.raises(OverflowError):
            counter.add(1)
        with pytest.raises(OverflowError):
            counter.value = -(2**63) - 1
        assert counter.value == 2**63 - 1
    else:  # a Python int has no bound
        assert counter.add(1) == 2**63


# -- the standard library's argument rules -------------------------------------------------


def _admitted(q: Any) -> int:
    """How many items ``put_nowait`` takes before Full (at most 10)."""
    for n in range(10):
        try:
            q.put_nowait(n)
        except (queue.Full, asyncio.QueueFull):
            return n
    return 10


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("maxsize", [0, -1, -2.5, 1, 2.5, 3])
def test_maxsize_means_what_it_means_to_the_standard_library(name: str, maxsize: float) -> None:
    stdlib: Any = asyncio.Queue(maxsize) if name == "asyncio" else queue.Queue(maxsize)  # type: ignore[arg-type]
    ours = critsec.runtime(name).queue(maxsize)
    assert ours.maxsize == maxsize
    assert _admitted(ours) == _admitted(stdlib)
    assert ours.full() == stdlib.full()


@pytest.mark.parametrize("name", ALL)
def test_maxsize_must_be_a_number(name: str) -> None:
    for bad in ("3", None, True):
        with pytest.raises(TypeError, match="maxsize must be a number"):
            critsec.runtime(name).queue(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL)
def test_queues_can_be_subscripted_like_the_standard_ones(name: str) -> None:
    cls = type(critsec.runtime(name).queue())
    alias: Any = cls[int]
    assert alias.__origin__ is cls


@pytest.mark.parametrize("name", ["threads", "processes", "coroutines"])
def test_a_timeout_that_is_not_a_number_names_the_argument(name: str) -> None:
    rt = critsec.runtime(name)
    q, lock = rt.queue(1), rt.lock()

    def drive(result: Any) -> Any:
        # Coroutine methods that may wait check their arguments when started.
        return list(result) if name == "coroutines" else result

    calls: list[Callable[[], Any]] = [
        lambda: drive(q.get(True, "x")),
        lambda: drive(q.put(1, True, "x")),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="timeout must be a number of seconds, got str"):
            call()
    # The threads lock is threading.Lock itself, which words it its own way.
    named = name != "threads"
    with pytest.raises(TypeError, match="timeout must be a number" if named else None):
        drive(lock.acquire(True, "x"))
