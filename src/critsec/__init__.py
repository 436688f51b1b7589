"""critsec: see, prove and fix critical sections.

One lock, counter and queue over threads, processes, coroutines (generator
tasks) and asyncio -- obtained from :func:`runtime` by name --; an explorer
(:func:`explore`, :func:`replay`, :func:`check`; the rest of it in
:mod:`critsec.explorer`) that finds the interleaving that breaks a critical
section; and a lab (the ``critsec`` command) that runs the classic lesson
for real.
"""

from ._errors import (
    CritsecError,
    DeadlockError,
    Empty,
    Full,
    LeaseExpired,
    ServerUnreachable,
    ShutDown,
    StaleToken,
    TaskError,
)
from ._protocols import (
    AsyncLock,
    AsyncQueue,
    Counter,
    GeneratorLock,
    GeneratorQueue,
    Lock,
    Queue,
    Yielding,
)
from ._runtime import RUNTIMES, Runtime, runtime
from ._task import Task, task
from .explorer import check, explore, replay

__all__ = [
    "RUNTIMES",
    "AsyncLock",
    "AsyncQueue",
    "Counter",
    "CritsecError",
    "DeadlockError",
    "Empty",
    "Full",
    "GeneratorLock",
    "GeneratorQueue",
    "LeaseExpired",
    "Lock",
    "Queue",
    "Runtime",
    "ServerUnreachable",
    "ShutDown",
    "StaleToken",
    "Task",
    "TaskError",
    "Yielding",
    "check",
    "explore",
    "replay",
    "runtime",
    "task",
]

__version__ = "0.1.0"
