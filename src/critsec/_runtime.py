"""The runtime: where tasks run and where their shared primitives come from.

A runtime is the one word a user changes to move the same task code from
threads to processes (or coroutines, asyncio): it makes the lock, counter
and queue that fit its execution model, and it runs tasks.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

from ._task import Task, as_tasks

__all__ = ["RUNTIMES", "Runtime", "runtime"]

#: Names accepted by :func:`runtime`, and the module holding each runtime.
RUNTIMES: dict[str, str] = {
    "threads": "critsec.runtimes._threads:ThreadsRuntime",
    "processes": "critsec.runtimes._processes:ProcessesRuntime",
    "coroutines": "critsec.runtimes._coroutines:CoroutinesRuntime",
    "asyncio": "critsec.runtimes._asyncio:AsyncioRuntime",
}


class Runtime(abc.ABC):
    """An execution model: makes primitives, runs tasks.

    Primitives from one runtime are meant for tasks of that runtime: a
    threads lock does not exclude processes, a coroutines lock does not
    block threads.
    """

    name: ClassVar[str]
    #: How its tasks are written: ``"blocking"`` (plain functions: threads,
    #: processes), ``"generator"`` (generator functions switching at
    #: ``yield``: coroutines) or ``"async"`` (``async def``: asyncio).
    style: ClassVar[str]

    @abc.abstractmethod
    def lock(self) -> Any:
        """A new, unlocked mutual-exclusion lock."""

    @abc.abstractmethod
    def counter(self, initial: int = 0) -> Any:
        """A new shared integer counter holding ``initial``."""

    @abc.abstractmethod
    def queue(self, maxsize: int = 0) -> Any:
        """A new FIFO queue holding at most ``maxsize`` items (0: no bound)."""

    def run(self, *tasks: Task | Callable[..., Any], timeout: float | None = None) -> list[Any]:
        """Run ``tasks`` concurrently and wait for all of them.

        Returns their return values, in the order given. If any task
        raised, raises :class:`~critsec.TaskError` for the first (in the
        order given) with the others in ``.others``. ``timeout`` (seconds)
        bounds the whole run; past it ``TimeoutError`` names the tasks that
        had not finished.
        """
        prepared = self._prepare(tasks, timeout)
        return self._run(prepared, timeout) if prepared else []

    @staticmethod
    def _prepare(tasks: tuple[Task | Callable[..., Any], ...], timeout: float | None) -> list[Task]:
        """Check ``run``'s arguments; the tasks, uniquely named."""
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        return as_tasks(tasks)

    @abc.abstractmethod
    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]: ...

    def __repr__(self) -> str:
        return f"critsec.runtime({self.name!r})"


def runtime(name: str, **options: Any) -> Runtime:
    """The runtime called ``name``: one of ``threads``, ``processes``,
    ``coroutines``, ``asyncio``.

    ``options`` go to that runtime: ``processes`` takes
    ``start_method="fork"|"spawn"|"forkserver"`` (its ``queue()`` also
    takes ``buffer_size``, the shared bytes that hold the pickled items);
    ``coroutines`` takes ``order="round-robin"|"random"`` and ``seed``.
    """
    if not isinstance(name, str):
        raise TypeError(f"a runtime name is a str, got {type(name).__name__}")
    target = RUNTIMES.get(name)
    if target is None:
        valid = ", ".join(RUNTIMES)
        raise ValueError(f"unknown runtime {name!r}; valid runtimes: {valid}")
    module_name, class_name = target.split(":")
    import importlib

    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)  # type: ignore[no-any-return]
