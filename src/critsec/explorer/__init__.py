"""The explorer: find, show and replay the interleaving that breaks a
critical section.

On CPython 3.10+ the GIL switches threads so rarely that a stress test of
``counter += 1`` almost never shows the race; the explorer takes control
of the scheduler instead and searches the interleavings deterministically.

One idea per module:

* the search: ``_explore`` (``explore``/``replay``), ``_settings`` (its
  limits and defaults), ``_scheduler`` (the one place a schedule chooses:
  strategies, replay tokens), ``_dpor`` (partial-order reduction for
  ``dfs``), ``_fairness`` (spinning told from progress);
* the drivers, one per kind of task (``_driver`` says what one is):
  ``_threads`` (real threads, one at a time), ``_generators``,
  ``_asyncio``; shared by them: ``_clock`` (the one virtual clock),
  ``_usercode`` (whose code is switched inside), ``_exits`` (a task that
  would end the process); the threads driver's own: ``_backends``
  (settrace or sys.monitoring), ``_points`` (which instructions are
  switch points), ``_steps`` (what a task's next instruction means: a
  switch, a loop's round, a read or write, a footprint), ``_launch``
  (starting the task threads at once, on one CPU), ``_patches``
  (controlled locks, conditions, queues);
* what a step touched: ``_access`` (an instruction's shared read or
  write), ``_footprints`` (its places, for the reduction), ``_recording``
  (the trace's reads and writes, for every driver);
* what is shown: ``_trace`` (events, conflicts, text), ``_html`` (the
  interleaving player); and ``_pytest`` (the explorer in tests).
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
