"""How a task ended, and turning a run's outcomes into a result or an error."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from ._errors import TaskError


@dataclass
class Outcome:
    """A finished task: its value, or the error it raised (as text, and the
    exception itself when it could be kept)."""

    value: Any = None
    error: BaseException | None = None
    summary: str = ""
    details: str = ""

    @classmethod
    def failure(cls, exc: BaseException) -> Outcome:
        summary = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(error=exc, summary=summary, details=details)

    @property
    def failed(self) -> bool:
        return bool(self.summary)


def collect(names: list[str], outcomes: list[Outcome]) -> list[Any]:
    """The tasks' values, or raise ``TaskError`` for the first that failed."""
    errors = []
    for name, outcome in zip(names, outcomes, strict=True):
        if outcome.failed:
            error = TaskError(name, outcome.summary, outcome.details)
            error.__cause__ = outcome.error
            errors.append(error)
    if errors:
        errors[0].others = errors[1:]
        raise errors[0]
    return [outcome.value for outcome in outcomes]


def overdue(timeout: float | None, unfinished: list[str]) -> TimeoutError:
    """The error of a run that ran out of time: which tasks had not finished."""
    return TimeoutError(f"tasks still running after {timeout} s: {', '.join(unfinished)}")
