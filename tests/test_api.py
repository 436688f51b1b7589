"""The public face: what ``critsec`` exports, and the exception tree."""

from __future__ import annotations

import asyncio
import queue
import sys

import pytest

import critsec


def test_all_names_exist_and_nothing_public_is_missing() -> None:
    exported = set(critsec.__all__)
    assert all(hasattr(critsec, name) for name in exported)
    public = {
        name
        for name, value in vars(critsec).items()
        if not name.startswith("_") and not isinstance(value, type(sys))
    }
    assert public - {"__version__"} == exported


def test_every_exception_is_a_critsec_error() -> None:
    for name in ("DeadlockError", "Empty", "Full", "ShutDown", "TaskError"):
        assert issubclass(getattr(critsec, name), critsec.CritsecError)


def test_exceptions_are_also_the_standard_names() -> None:
    assert issubclass(critsec.Full, queue.Full)
    assert issubclass(critsec.Full, asyncio.QueueFull)
    assert issubclass(critsec.Empty, queue.Empty)
    assert issubclass(critsec.Empty, asyncio.QueueEmpty)
    if sys.version_info >= (3, 13):
        assert issubclass(critsec.ShutDown, queue.ShutDown)
        assert issubclass(critsec.ShutDown, asyncio.QueueShutDown)


def test_task_names_are_made_unique() -> None:
    def work() -> None: ...

    rt = critsec.runtime("threads")
    with pytest.raises(critsec.TaskError) as caught:
        rt.run(work, critsec.task(divmod, 1, 0), critsec.task(divmod, 2, 0))
    assert caught.value.task == "divmod#1"
    assert [other.task for other in caught.value.others] == ["divmod#2"]
    assert "ZeroDivisionError" in caught.value.summary
    task = critsec.task(work).named("worker-1")
    assert task.name == "worker-1"
    with pytest.raises(TypeError):
        critsec.task(42)  # type: ignore[arg-type]


def test_runtime_name_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        critsec.runtime(3)  # type: ignore[call-overload]
