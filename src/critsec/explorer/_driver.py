"""What a driver is: the mechanics of running one schedule of one kind of task.

The explorer knows three kinds of task -- plain functions run as real
threads, generator functions switching at ``yield``, and ``async def``
functions on an event loop -- and one driver for each. A driver runs one
schedule: it calls ``setup()`` for fresh state, starts every task with that
state, lets exactly one task run at a time, asks ``scheduler.branch`` at
every switch point who runs next, records :class:`~._trace.Event` objects,
and finally checks ``invariant(state)``.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import CritsecError
from .._task import function_name, unique_names
from ._scheduler import Scheduler
from ._trace import Recorder

__all__ = [
    "Driver",
    "RunOutcome",
    "ScheduleStalled",
    "describe_exception",
    "task_names",
    "task_roles",
]

#: The kinds of failure a schedule can end in.
FAILURE_KINDS = ("invariant", "exception", "deadlock", "livelock")


@dataclass(frozen=True)
class RunOutcome:
    """How one schedule ended: ``kind`` None when it passed, else one of
    ``FAILURE_KINDS``; ``message`` one line for people; ``detail`` a
    traceback (exception), who waits on what (deadlock) or where each task
    spins (livelock)."""

    kind: str | None = None
    message: str = ""
    detail: str = ""
    task: int | None = None  # the task that raised, for kind "exception"


class ScheduleStalled(CritsecError):
    """A schedule stopped making steps: a task blocks for real, on something
    the explorer does not control (I/O, a lock made before ``explore`` and
    kept in an object), or runs one call for very long. The message names
    the task and where it is; the schedule is abandoned."""


def task_names(tasks: Sequence[Callable[..., Any]]) -> tuple[str, ...]:
    """The names tasks have in traces: the names ``Runtime.run`` gives them
    too (their function names, ``bump#1``, ``bump#2`` where several share one)."""
    return tuple(unique_names([function_name(t) for t in tasks]))


def task_roles(tasks: Sequence[Callable[..., Any]]) -> tuple[int, ...]:
    """Each task's role: the index of the first task that is the same
    callable (``[writer] * 100 + [reader]``: a hundred 0s, then 100). Tasks
    of one role are interchangeable, which PCT makes use of."""
    first: dict[object, int] = {}
    roles = []
    for index, task in enumerate(tasks):
        try:
            roles.append(first.setdefault(task, index))
        except TypeError:  # unhashable: a role of its own
            roles.append(index)
    return tuple(roles)


_EXPLORER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
#: What calls a task: the explorer, and asyncio's loop (a SystemExit leaves
#: the loop through it: see _asyncio).
_CALLERS = (_EXPLORER, os.path.join(os.path.dirname(asyncio.__file__), ""))


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """(one line, full traceback) for an exception raised by a task. The
    traceback shows the user's code: the driver frames that called the task,
    and the explorer's own frames that raised on the task's behalf (a
    refused ``os._exit``), are left out. Each line is cut as a state's
    repr is (an exception may carry a huge value in its message)."""
    line = _shortened("".join(traceback.format_exception_only(type(exc), exc)).strip())
    shown = traceback.TracebackException.from_exception(exc)
    stack = shown.stack
    first = next((i for i, f in enumerate(stack) if not f.filename.startswith(_CALLERS)), None)
    if first is not None:
        last = max(i for i, f in enumerate(stack) if not f.filename.startswith(_EXPLORER))
        shown.stack = traceback.StackSummary.from_list(stack[first : last + 1])
    lines = "".join(shown.format()).splitlines(keepends=True)
    return line, "".join(_shortened(text.rstrip("\n")) + "\n" for text in lines)


#: The most of a state's repr a failure message shows: a state of 100,000
#: items made a message of 689 KB on one line.
MAX_STATE_REPR = 500


def _shortened(text: str) -> str:
    if len(text) <= MAX_STATE_REPR:
        return text
    return f"{text[:MAX_STATE_REPR]}... ({len(text):,} characters in all)"


class Driver:
    """Runs one schedule of tasks of one kind. Subclasses implement ``run``."""

    #: The kind of task it runs: "blocking", "generator" or "async"
    kind = ""

    @property
    def describes_steps(self) -> bool:
        """Whether it tells the scheduler what each step touches
        (``Scheduler.declare``), so that ``dfs`` can reduce."""
        return False

    def __init__(self, granularity: str = "opcode") -> None:
        # Only threads switch inside a task's code; generator and asyncio
        # tasks switch where they yield or await, whatever the granularity.
        self.granularity = granularity

    def run(
        self,
        setup: Callable[[], Any],
        tasks: Sequence[Callable[[Any], Any]],
        invariant: Callable[[Any], bool],
        scheduler: Scheduler,
        recorder: Recorder,
    ) -> RunOutcome:
        raise NotImplementedError

    @staticmethod
    def check_invariant(invariant: Callable[[Any], bool], state: Any) -> RunOutcome:
        """The outcome of ``invariant(state)`` once every task finished."""
        try:
            holds = invariant(state)
        except Exception as exc:
            line, detail = describe_exception(exc)
            return RunOutcome("invariant", f"the invariant raised {line}", detail)
        if not holds:
            # An object without a repr of its own would print its address,
            # which differs from run to run: the trace must not.
            plain = getattr(type(state), "__repr__", None) is object.__repr__
            shown = "" if plain else f": state is {_shortened(repr(state))}"
            return RunOutcome("invariant", f"the invariant does not hold{shown}")
        return RunOutcome()
