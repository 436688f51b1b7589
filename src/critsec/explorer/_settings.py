"""The explorer's settings in one place: what bounds a search and how it
chooses, with defaults that the environment may override.

``explore``, ``replay``, ``check`` and ``critsec explore`` all take these
names; a setting left out (None) comes from :meth:`Settings.from_env`:
the environment variable ``CRITSEC_<NAME>`` if set (``CRITSEC_MAX_SCHEDULES
=20000`` for a nightly run, without editing tests), else the default below.
An explicit argument always wins. A malformed variable is a ``ValueError``
naming it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._scheduler import STRATEGIES

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "CRITSEC_"


def _depth(text: str) -> int | tuple[int, ...]:
    depths = tuple(_at_least(1)(part) for part in text.split(","))
    return depths[0] if len(depths) == 1 else depths


def _bound(text: str) -> int | None:
    return None if text.lower() == "none" else _at_least(0)(text)


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return parse


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = int(text)
        if number < minimum:
            raise ValueError(text)
        return number

    return parse


def _flag(text: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.lower() not in words:
        raise ValueError(text)
    return words[text.lower()]


def _seconds(text: str) -> float:
    seconds = float(text)
    if not 0 < seconds < float("inf"):
        raise ValueError(text)
    return seconds


@dataclass(frozen=True)
class Settings:
    """How one search runs.

    ``strategy``: ``"pct"``, ``"random"``, ``"pos"`` or ``"dfs"``; ``max_schedules``
    and ``timeout`` (seconds; None: none) bound the search, ``max_steps``
    one schedule; ``preemption_bound`` bounds ``dfs`` (None: no bound);
    ``depth`` is PCT's bug depth (a sequence: taken in turn, one per
    schedule); ``granularity``: thread tasks switch between ``"opcode"``\\ s
    or ``"line"``\\ s of your code; ``reduction``: ``dfs`` skips schedules
    that only reorder independent steps (partial-order reduction, for
    thread tasks at opcode granularity; off: every schedule).
    """

    strategy: str = "pct"
    max_schedules: int = 1000
    max_steps: int = 100_000
    timeout: float | None = None
    preemption_bound: int | None = None
    depth: int | tuple[int, ...] = (3, 4, 5)
    granularity: str = "opcode"
    reduction: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The defaults, with each ``CRITSEC_<NAME>`` set in ``environ``
        (default ``os.environ``) in place of its setting."""
        environ = os.environ if environ is None else environ
        parsers: dict[str, Callable[[str], Any]] = {
            "strategy": _one_of(*STRATEGIES),
            "max_schedules": _at_least(1),
            "max_steps": _at_least(1),
            "timeout": _seconds,
            "preemption_bound": _bound,
            "depth": _depth,  # "3" or "3,4,5"
            "granularity": _one_of("opcode", "line"),
            "reduction": _flag,  # 1/0, true/false, yes/no
        }
        found: dict[str, Any] = {}
        for name, parse in parsers.items():
            variable = ENV_PREFIX + name.upper()
            text = environ.get(variable)
            if text is None or not text.strip():
                continue
            try:
                found[name] = parse(text.strip())
            except ValueError:
                raise ValueError(f"{variable}={text!r} is not a valid {name}") from None
        return cls(**found)

    def given(self, **arguments: Any) -> Settings:
        """These settings with the arguments that are not None in their place."""
        return dataclasses.replace(self, **{k: v for k, v in arguments.items() if v is not None})
