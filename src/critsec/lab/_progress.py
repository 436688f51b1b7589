"""Progress for long experiments: a transient rich bar on stderr, or nothing.

Results go to stdout; progress never does, so piping or ``--json`` output
stays clean. The bar is transient -- it disappears before the caller
prints the results it was waiting for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

__all__ = ["Tracker", "progress"]


class Tracker(Protocol):
    def __call__(self, description: str) -> None:
        """Mark the previous job done and show ``description`` as the current one."""


@contextmanager
def progress(total: int, enabled: bool) -> Iterator[Tracker]:
    """A tracker for ``total`` jobs, drawn on stderr only if ``enabled``.

    Call the tracker with a description as each job starts; the bar is
    redrawn then (it starts no thread). For the main thread; does not block.
    """
    if not enabled:
        yield lambda description: None
        return
    bar = Progress(
        TextColumn("{task.description}", markup=False),  # a name may hold "[...]"
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
        # No refresh thread: the processes runtime may fork while the bar is
        # shown, and forking a multi-threaded process can deadlock the child
        # (Python 3.12+ warns). The bar is redrawn as each job starts instead.
        auto_refresh=False,
    )
    job = bar.add_task("", total=total)
    started = 0

    def track(description: str) -> None:
        nonlocal started
        bar.update(job, description=description, completed=started, refresh=True)
        started += 1

    with bar:
        yield track
