"""The explorer: find, show and replay the interleaving that breaks a
critical section.

On CPython 3.10+ the GIL switches threads so rarely that a stress test of
``counter += 1`` almost never shows the race; the explorer takes control
of the scheduler instead and searches the interleavings deterministically.
"""

from ._driver import ScheduleStalled
from ._exits import ProcessExit
from ._explore import GRANULARITIES, Result, explore, replay
from ._pytest import check
from ._scheduler import STRATEGIES, ExplorationLimit, ReplayMismatch
from ._settings import Settings
from ._trace import Event

__all__ = [
    "GRANULARITIES",
    "STRATEGIES",
    "Event",
    "ExplorationLimit",
    "ProcessExit",
    "ReplayMismatch",
    "Result",
    "ScheduleStalled",
    "Settings",
    "check",
    "explore",
    "replay",
]
