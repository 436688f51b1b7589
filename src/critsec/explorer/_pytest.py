"""The explorer in tests: ``check`` and a small pytest plugin.

``check(setup, tasks, invariant, **options)`` explores like
:func:`~critsec.explorer.explore` and raises ``AssertionError`` when a
schedule breaks the invariant, with the trace, the seed and the replay
token in the message -- so any test runner shows the failing interleaving.
Pass ``replay=token`` to run that one schedule again while fixing the bug.

Unlike ``explore``, ``check`` uses seed 0 when none is given: a test
explores the same schedules on every run, so it cannot pass today and fail
tomorrow on the same code. The pytest plugin (this module: loaded by
pytest itself through critsec's ``pytest11`` entry point; where that is not
installed, ``-p critsec.explorer._pytest``) adds ``--critsec-seed N|random``
to explore other schedules -- in a nightly job, say -- without editing
tests.

This module does not import pytest: ``check`` works anywhere, and the
hooks below only run inside pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._explore import Result, explore
from ._explore import replay as replay_schedule
from ._trace import summary

__all__ = ["DEFAULT_SEED", "check"]

#: The seed ``check`` uses when none is given (None: a fresh one per call).
#: Changed only by the plugin's ``--critsec-seed``, for one pytest session.
DEFAULT_SEED: int | None = 0
_saved: list[int | None] = []  # the seeds --critsec-seed replaced, to restore


def check(
    setup: Callable[[], Any],
    tasks: Sequence[Callable[..., Any]],
    invariant: Callable[[Any], bool],
    *,
    replay: str | None = None,
    **options: Any,
) -> Result:
    """Explore ``tasks`` (as :func:`~critsec.explorer.explore` does, with
    the same ``options``) and raise ``AssertionError`` if some schedule
    breaks ``invariant``, raises, or deadlocks. The message holds the
    trace, the strategy and seed, and the replay token.

    ``replay``: a token from such a message; runs that one schedule (then
    no other option but ``granularity``, ``max_steps`` and ``include`` applies).
    ``seed`` defaults to ``DEFAULT_SEED`` (0) so that tests are repeatable.
    Returns the :class:`~critsec.explorer.Result` of a pass: assert on
    ``result.exhausted`` to require a proof. Blocks until the search ends;
    call it from the thread running the test.
    """
    __tracebackhide__ = True  # pytest: the failure is in the test, not here
    if replay is not None:
        others = sorted(set(options) - {"granularity", "max_steps", "include"})
        if others:
            raise TypeError(f"check(replay=...) runs one schedule: it takes no {', '.join(others)}")
        result = replay_schedule(setup, tasks, invariant, replay, **options)
    else:
        options.setdefault("seed", DEFAULT_SEED)
        result = explore(setup, tasks, invariant, **options)
    if result.failed:
        raise AssertionError("critsec: " + summary(result, "replay: check(..., replay='{token}')"))
    return result


# -- the pytest plugin -------------------------------------------------------------


def _seed(value: str) -> int | None:
    """``--critsec-seed``'s value: a non-negative integer, or ``random``."""
    if value == "random":
        return None
    if value.isascii() and value.isdigit():
        return int(value)
    raise ValueError(f"--critsec-seed must be a non-negative integer or 'random', got {value!r}")


def pytest_addoption(parser: Any) -> None:
    """pytest hook: the plugin's one option."""
    parser.getgroup("critsec").addoption(
        "--critsec-seed",
        metavar="N|random",
        default=None,
        help="seed for critsec.check() calls that give none (default 0; "
        "'random': a fresh one per call, printed with any failure)",
    )


def pytest_configure(config: Any) -> None:
    """pytest hook: apply ``--critsec-seed`` for this session."""
    global DEFAULT_SEED
    value = config.getoption("critsec_seed")
    if value is None:
        return
    try:
        seed = _seed(value)
    except ValueError as error:
        import pytest  # only ever imported by pytest itself, here

        raise pytest.UsageError(str(error)) from None
    _saved.append(DEFAULT_SEED)
    DEFAULT_SEED = seed


def pytest_unconfigure(config: Any) -> None:
    """pytest hook: restore the default seed (pytest may run in-process again)."""
    global DEFAULT_SEED
    if config.getoption("critsec_seed") is not None and _saved:
        DEFAULT_SEED = _saved.pop()


def pytest_report_header(config: Any) -> str | None:
    """pytest hook: say which seed ``check`` uses when it is not the default."""
    if config.getoption("critsec_seed") is None:
        return None
    return f"critsec: check() seed {'random' if DEFAULT_SEED is None else DEFAULT_SEED}"
