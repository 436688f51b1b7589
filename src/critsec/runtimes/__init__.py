"""One module per execution model, all with the same vocabulary.

Use :func:`critsec.runtime` to get one by name; the classes here are
public for type annotations and ``isinstance`` checks (the protocols
``critsec.Lock``, ``critsec.Queue``, ... are usually the better
annotation). They are imported on first use, so that a program using one
runtime does not pay for importing the others (``multiprocessing``,
``asyncio``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._asyncio import AsyncioLock, AsyncioQueue, AsyncioRuntime
    from ._cooperative import CooperativeCounter
    from ._coroutines import CoroutineLock, CoroutineQueue, CoroutinesRuntime
    from ._processes import ProcessCounter, ProcessesRuntime, ProcessLock, ProcessQueue
    from ._redis import RedisCounter, RedisLock, RedisQueue, RedisRuntime
    from ._threads import ThreadCounter, ThreadQueue, ThreadsRuntime

#: Each public name and the private module that defines it.
_HOMES = {
    "AsyncioLock": "_asyncio",
    "AsyncioQueue": "_asyncio",
    "AsyncioRuntime": "_asyncio",
    "CooperativeCounter": "_cooperative",
    "CoroutineLock": "_coroutines",
    "CoroutineQueue": "_coroutines",
    "CoroutinesRuntime": "_coroutines",
    "ProcessCounter": "_processes",
    "ProcessLock": "_processes",
    "ProcessQueue": "_processes",
    "ProcessesRuntime": "_processes",
    "RedisCounter": "_redis",
    "RedisLock": "_redis",
    "RedisQueue": "_redis",
    "RedisRuntime": "_redis",
    "ThreadCounter": "_threads",
    "ThreadQueue": "_threads",
    "ThreadsRuntime": "_threads",
}

__all__ = [
    "AsyncioLock",
    "AsyncioQueue",
    "AsyncioRuntime",
    "CooperativeCounter",
    "CoroutineLock",
    "CoroutineQueue",
    "CoroutinesRuntime",
    "ProcessCounter",
    "ProcessLock",
    "ProcessQueue",
    "ProcessesRuntime",
    "RedisCounter",
    "RedisLock",
    "RedisQueue",
    "RedisRuntime",
    "ThreadCounter",
    "ThreadQueue",
    "ThreadsRuntime",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
