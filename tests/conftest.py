"""Fixtures shared by the whole suite: every runtime, by name."""

from __future__ import annotations

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
}


@pytest.fixture(params=list(RUNTIME_PARAMS))
def rt(request: pytest.FixtureRequest) -> critsec.Runtime:
    name, options = RUNTIME_PARAMS[request.param]
    return critsec.runtime(name, **options)
