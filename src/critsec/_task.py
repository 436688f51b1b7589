"""A task: a function and the arguments to call it with, under a name.

The primitives a task shares (lock, counter, queue) are passed to it as
arguments, as in the lesson. That is what lets the same task move from
threads to processes: a process cannot see its parent's globals, but it
receives its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Task", "task"]


@dataclass(frozen=True)
class Task:
    """``fn(*args, **kwargs)`` to be run by a runtime, known as ``name``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"a task needs a callable, got {type(self.fn).__name__}")
        if not self.name:
            object.__setattr__(self, "name", getattr(self.fn, "__qualname__", repr(self.fn)))

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
    seen: dict[str, int] = {}
    for t in tasks:
        seen[t.name] = seen.get(t.name, 0) + 1
    numbered: dict[str, int] = {}
    unique = []
    for t in tasks:
        if seen[t.name] > 1:
            numbered[t.name] = numbered.get(t.name, 0) + 1
            t = t.named(f"{t.name}#{numbered[t.name]}")
        unique.append(t)
    return unique
