"""A task: a function and the arguments to call it with, under a name.

The primitives a task shares (lock, counter, queue) are passed to it as
arguments, as in the lesson. That is what lets the same task move from
threads to processes: a process cannot see its parent's globals, but it
receives its arguments.

This module also holds the two rules every part of critsec applies to
tasks -- the runtimes, the explorer, the command line, the benchmark:

* **what kind of function a task is** (:func:`task_kind`): a plain
  ``def`` ("blocking": threads, processes), a generator function
  ("generator": coroutines) or an ``async def`` ("async": asyncio); a task
  of the wrong kind is refused before anything runs, with the runtime that
  would run it (:func:`check_kind`);
* **what a task is called** (:func:`unique_names`): its function's name,
  numbered ``work#1``, ``work#2`` in order where several share one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "KINDS",
    "Kind",
    "Task",
    "as_tasks",
    "check_kind",
    "check_made",
    "check_result",
    "common_kind",
    "function_name",
    "task",
    "task_kind",
    "unique_names",
]

#: How a task function is written: a plain function that blocks when it
#: waits, a generator function that waits with ``yield from``, or an
#: ``async def`` that awaits.
Kind = Literal["blocking", "generator", "async"]

#: Each kind, what it is called in messages, and the runtimes that run it.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "blocking": ("a plain function", ("threads", "processes")),
    "generator": ("a generator function", ("coroutines",)),
    "async": ("an async function", ("asyncio",)),
}

#: Why a plain function cannot be a task of a cooperative runtime.
_ADVICE = {
    "generator": "the coroutines runtime switches tasks only at `yield`: add a `yield` where "
    "the task may switch (e.g. between reading and writing shared state)",
    "async": "the asyncio runtime runs coroutines: write it as `async def` and `await` where "
    "the task may switch",
}


def _innermost(fn: Any) -> Any:
    """The function under partials, bound methods and ``functools.wraps`` decorators."""
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif inspect.ismethod(fn):
            fn = fn.__func__
        elif hasattr(fn, "__wrapped__"):
            fn = inspect.unwrap(fn)
        else:
            return fn


def task_kind(fn: Callable[..., Any]) -> Kind | None:
    """The kind of task ``fn`` is, decided without calling it.

    Looks through ``functools.partial``, bound methods and
    ``functools.wraps`` decorators. None when only a call could tell: a
    lambda (it may return a generator), a callable object, a builtin.
    Pure; any caller.
    """
    inner = _innermost(fn)
    if inspect.isgeneratorfunction(inner):
        return "generator"
    if inspect.iscoroutinefunction(inner):
        return "async"
    if inspect.isfunction(inner) and inner.__name__ != "<lambda>":
        return "blocking"
    return None


def _refusal(kind: Kind | None, wanted: Kind) -> str | None:
    """Why a task of ``kind`` cannot run where tasks of ``wanted`` kind do."""
    if kind is None or kind == wanted:
        return None
    noun, runtimes = KINDS[kind]
    where = " or ".join(f"critsec.runtime({name!r})" for name in runtimes)
    if kind == "blocking":
        return f"is not {KINDS[wanted][0]}: {_ADVICE[wanted]} (or run it with {where})"
    return f"is {noun}: run it with {where}"


def check_kind(tasks: Iterable[Task], wanted: Kind) -> None:
    """Refuse, with a one-line ``TypeError``, the first task that is not of
    kind ``wanted``. Tasks whose kind only a call can tell pass (their
    runtime checks what the call returns)."""
    for t in tasks:
        problem = _refusal(task_kind(t.fn), wanted)
        if problem:
            raise TypeError(f"task {t.name!r} {problem}")


def check_result(name: str, value: Any) -> Any:
    """``value`` returned by a blocking task, unless it is a generator or a
    coroutine: then the task was written for another runtime and its body
    never ran -- close it (no "never awaited" warning) and say so."""
    if inspect.isgenerator(value) or inspect.iscoroutine(value):
        value.close()
        kind: Kind = "generator" if inspect.isgenerator(value) else "async"
        runtime = KINDS[kind][1][0]
        raise TypeError(
            f"task {name!r} returned a {type(value).__name__}, so none of its body ran: "
            f"run it with critsec.runtime({runtime!r})"
        )
    return value


def check_made(name: str, made: Any, wanted: Kind) -> Any:
    """``made``, what calling a task of a cooperative runtime returned,
    unless it is not a generator (``wanted="generator"``) or a coroutine
    (``"async"``): then ``TypeError`` (and a generator or coroutine of the
    other kind is closed, never started)."""
    is_made = inspect.isgenerator if wanted == "generator" else inspect.iscoroutine
    if is_made(made):
        return made
    if inspect.isgenerator(made) or inspect.iscoroutine(made):
        made.close()  # never started: no "never awaited" warning
    raise TypeError(
        f"task {name!r} returned {type(made).__name__}, not what {KINDS[wanted][0]} returns: "
        f"{_ADVICE[wanted]}"
    )


def common_kind(fns: Sequence[Callable[..., Any]]) -> Kind:
    """The one kind of all of ``fns`` (a callable only a call could tell
    counts as blocking); ``TypeError`` if they mix kinds or one is not
    callable, ``ValueError`` if there are none."""
    if not fns:
        raise ValueError("at least one task is needed")
    kinds: set[Kind] = set()
    for fn in fns:
        if not callable(fn):
            raise TypeError(f"a task must be callable, got {type(fn).__name__}")
        kinds.add(task_kind(fn) or "blocking")
    if len(kinds) > 1:
        raise TypeError(
            f"tasks of different kinds cannot run together ({', '.join(sorted(kinds))}): use all "
            "plain functions, all generator functions, or all async functions"
        )
    return kinds.pop()


def function_name(fn: Callable[..., Any]) -> str:
    """What a task made from ``fn`` is called: the name of the function
    (under any partial or method), else its type's name."""
    inner = _innermost(fn)
    name = getattr(inner, "__name__", None)
    return name if isinstance(name, str) and name else type(inner).__name__


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with the ones that occur more than once numbered in order:
    ``[a, b, a]`` -> ``[a#1, b, a#2]``. The one naming rule for tasks, in
    errors and in traces alike."""
    total = {name: names.count(name) for name in names}
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if total[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name}#{seen[name]}"
        out.append(name)
    return out


@dataclass(frozen=True)
class Task:
    """``fn(*args, **kwargs)`` to be run by a runtime, known as ``name``
    (by default the function's name)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"a task needs a callable, got {type(self.fn).__name__}")
        if not self.name:
            object.__setattr__(self, "name", function_name(self.fn))

    def named(self, name: str) -> Task:
        """The same task under another name (names show in errors and traces)."""
        return Task(self.fn, self.args, self.kwargs, name)

    def call(self) -> Any:
        return self.fn(*self.args, **self.kwargs)


def task(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Task:
    """Make a :class:`Task` that calls ``fn(*args, **kwargs)``.

    Runtimes run tasks; nothing runs until ``runtime.run(...)`` is called.
    Use ``task(...).named("producer-1")`` to choose the name shown in errors.
    """
    return Task(fn, args, kwargs)


def as_tasks(items: Iterable[Task | Callable[..., Any]]) -> list[Task]:
    """Tasks from what ``run`` was given, with names made unique (``work#2``)."""
    tasks = [item if isinstance(item, Task) else Task(item) for item in items]
    names = unique_names([t.name for t in tasks])
    return [t if t.name == name else t.named(name) for t, name in zip(tasks, names, strict=True)]
