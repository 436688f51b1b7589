"""The benchmark's programs: one tiny module per known-buggy or correct program.

Each module defines ``setup() -> state``, ``tasks`` (functions each called as
``task(state)``: all plain functions, all generator functions, or all
``async def``), ``invariant(state) -> bool`` (checked once every task
finished), ``BUG`` (True for a known-buggy program) and a one-line
``DESCRIPTION``. The order of ``tasks`` is one in which running them one
after another terminates and satisfies the invariant: every bug here is a
concurrency bug, visible only under some interleavings.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from critsec._task import common_kind

__all__ = ["LABELS", "kind", "load", "names"]


def names() -> list[str]:
    """Every program, buggy ones first, then alphabetically."""
    found = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(found, key=lambda name: (not load(name).BUG, name))


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def kind(program: ModuleType) -> str:
    """How the program's tasks run: critsec's task kind, ``"blocking"``
    (threads), ``"generator"`` or ``"async"``."""
    return common_kind(program.tasks)


#: The kinds as the benchmark's tables name them.
LABELS = {"blocking": "threads", "generator": "generators", "async": "asyncio"}
