"""The runtime: where tasks run and where their shared primitives come from.

A runtime is the one word a user changes to move the same task code from
threads to processes (or coroutines, asyncio): it makes the lock, counter
and queue that fit its execution model, and it runs tasks.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, overload

from ._protocols import Counter
from ._task import Kind, Task, as_tasks, check_kind

if TYPE_CHECKING:
    from .runtimes._asyncio import AsyncioRuntime
    from .runtimes._coroutines import CoroutinesRuntime
    from .runtimes._processes import ProcessesRuntime
    from .runtimes._redis import RedisRuntime
    from .runtimes._threads import ThreadsRuntime

__all__ = ["RUNTIMES", "Runtime", "runtime"]

#: Names accepted by :func:`runtime`, and the module holding each runtime.
RUNTIMES: dict[str, str] = {
    "threads": "critsec.runtimes._threads:ThreadsRuntime",
    "processes": "critsec.runtimes._processes:ProcessesRuntime",
    "coroutines": "critsec.runtimes._coroutines:CoroutinesRuntime",
    "asyncio": "critsec.runtimes._asyncio:AsyncioRuntime",
    "redis": "critsec.runtimes._redis:RedisRuntime",
}

#: URL schemes that name a server for the redis runtime.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


#: The type of a runtime's lock and of its queue: the protocols of its style
#: (``critsec.Lock``/``critsec.Queue``, the generator or the async ones).
L_co = TypeVar("L_co", covariant=True)
Q_co = TypeVar("Q_co", covariant=True)


class Runtime(abc.ABC, Generic[L_co, Q_co]):
    """An execution model: makes primitives, runs tasks.

    Primitives from one runtime are meant for tasks of that runtime: a
    threads lock does not exclude processes, a coroutines lock does not
    block threads. ``Runtime[critsec.Lock, critsec.Queue[Any]]`` is the
    type of the blocking runtimes (threads, processes).
    """

    name: ClassVar[str]
    #: How its tasks are written: ``"blocking"`` (plain functions: threads,
    #: processes), ``"generator"`` (generator functions switching at
    #: ``yield``: coroutines) or ``"async"`` (``async def``: asyncio).
    style: ClassVar[Kind]

    @abc.abstractmethod
    def lock(self) -> L_co:
        """A new, unlocked mutual-exclusion lock (see :class:`critsec.Lock`)."""

    @abc.abstractmethod
    def counter(self, initial: int = 0) -> Counter:
        """A new shared integer counter holding ``initial`` (see :class:`critsec.Counter`)."""

    @abc.abstractmethod
    def queue(self, maxsize: float = 0) -> Q_co:
        """A new FIFO queue holding at most ``maxsize`` items (``<= 0``: no
        bound), see :class:`critsec.Queue`."""

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

    def _prepare(
        self, tasks: tuple[Task | Callable[..., Any], ...], timeout: float | None
    ) -> list[Task]:
        """Check ``run``'s arguments; the tasks, uniquely named. A task of
        the wrong kind (a generator function given to threads, ...) is
        refused here, before any task starts."""
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        prepared = as_tasks(tasks)
        check_kind(prepared, self.style)
        return prepared

    @abc.abstractmethod
    def _run(self, tasks: list[Task], timeout: float | None) -> list[Any]: ...

    def __repr__(self) -> str:
        return f"critsec.runtime({self.name!r})"


@overload
def runtime(name: Literal["threads"]) -> ThreadsRuntime: ...
@overload
def runtime(name: Literal["processes"], *, start_method: str | None = None) -> ProcessesRuntime: ...
@overload
def runtime(
    name: Literal["coroutines"],
    *,
    order: str = "round-robin",
    seed: int | str | bytes | None = None,
) -> CoroutinesRuntime: ...
@overload
def runtime(name: Literal["asyncio"]) -> AsyncioRuntime: ...
@overload
def runtime(name: Literal["redis"], *, start_method: str | None = None) -> RedisRuntime: ...
@overload
def runtime(name: str, **options: Any) -> Runtime[Any, Any]: ...
def runtime(name: str, **options: Any) -> Runtime[Any, Any]:
    """The runtime called ``name``: one of ``threads``, ``processes``,
    ``coroutines``, ``asyncio``, ``redis`` (a private local server), or a
    server's URL -- ``redis://[:password@]host[:port][/db]``, ``rediss://``
    (TLS), ``unix://path`` -- for the redis runtime on that server.

    ``options`` go to that runtime: ``processes`` takes
    ``start_method="fork"|"spawn"|"forkserver"`` (its ``queue()`` also
    takes ``buffer_size``, the shared bytes that hold the pickled items);
    ``coroutines`` takes ``order="round-robin"|"random"`` and ``seed``.
    """
    if not isinstance(name, str):
        raise TypeError(f"a runtime name is a str, got {type(name).__name__}")
    if name.startswith(REDIS_SCHEMES):
        options["url"] = name
        name = "redis"
    target = RUNTIMES.get(name)
    if target is None:
        valid = ", ".join(RUNTIMES)
        raise ValueError(f"unknown runtime {name!r}; valid runtimes: {valid}")
    module_name, class_name = target.split(":")
    import importlib

    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)  # type: ignore[no-any-return]
