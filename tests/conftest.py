"""Fixtures shared by the whole suite: every runtime, by name.

``CRITSEC_MUTANT=<name>`` (read here, at import time, before any test runs)
swaps a broken primitive into the runtimes' factories (``tests/mutants.py``),
so that ``tests/mutation.py`` can show that the behavioural suite catches it.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import critsec

#: Every runtime the behavioural suite runs on: the processes runtime once
#: with each start method, because pickling and inheritance differ.
RUNTIME_PARAMS = {
    "threads": ("threads", {}),
    "processes-fork": ("processes", {"start_method": "fork"}),
    "processes-spawn": ("processes", {"start_method": "spawn"}),
    "coroutines": ("coroutines", {}),
    "asyncio": ("asyncio", {}),
    # A private server, started once for the session (critsec.runtime("redis")).
    "redis": ("redis", {}),
}

MUTANT = os.environ.get("CRITSEC_MUTANT") or None
if MUTANT is not None:
    import mutants

    mutants.activate(MUTANT)


def pytest_report_header(config: pytest.Config) -> str | None:
    if MUTANT is None:
        return None
    return f"critsec: MUTANT {MUTANT!r} is active (tests/mutants.py): tests are meant to fail"


@pytest.fixture(params=list(RUNTIME_PARAMS))
def rt(request: pytest.FixtureRequest) -> critsec.Runtime[Any, Any]:
    name, options = RUNTIME_PARAMS[request.param]
    return critsec.runtime(name, **options)


@pytest.fixture(params=["C loop", "Python loop"])
def coroutines_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a coroutines test under the scheduler's C round-robin loop, then
    under the Python loop it stands in for (the reference)."""
    if request.param == "Python loop":
        from critsec.runtimes import _coroutines

        monkeypatch.setattr(_coroutines, "_round_robin", None)
    return str(request.param)
