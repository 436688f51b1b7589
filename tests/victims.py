"""Processes a fault test starts by hand, to kill, stop or watch them.

Shared by the processes and redis runtimes' fault tests
(``tests/test_robust.py``, ``tests/test_redis.py``): start a task as a
process of the runtime's own context, and reap it -- with a safety net, so
that a broken primitive fails the test instead of holding up the session.
"""

from __future__ import annotations

from typing import Any

import pytest

# A safety net for a broken primitive; a passing run never waits this long.
FOREVER = 10


def start(rt: Any, target: Any, *args: Any) -> Any:
    """Start ``target(*args)`` as a process of ``rt`` (processes or redis)."""
    # Daemonic: a process a broken primitive left blocked is killed when the
    # test session ends, instead of holding it up (multiprocessing joins the others).
    process = rt.context.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def finish(process: Any) -> int:
    """Wait for ``process`` to end (at most :data:`FOREVER` seconds, else
    kill it and fail the test); its exit code."""
    process.join(FOREVER)
    if process.exitcode is None:
        process.kill()
        process.join()
        pytest.fail(f"process {process.pid} neither died nor finished in {FOREVER} s: stuck")
    code: int = process.exitcode
    process.close()
    return code
