"""A task process never outlives the program that started it.

Whatever ends the parent -- SIGTERM, SIGHUP, SIGKILL, a crash, the end of
the interpreter -- its task processes must end too: a child left running
keeps computing for nobody, or blocks for ever writing to a pipe nobody
reads, holding the caller's terminal or stderr open. ``run()`` stops its
children itself whenever it can (a failure, a timeout, Ctrl-C); this
module covers the endings where it cannot run at all.

* **The kernel kills the child when its parent dies.** On Linux, the child
  asks for ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` as soon as it starts
  (under ``fork`` and ``spawn`` its parent is the process that called
  ``run``), then checks that its parent is still the one that started it:
  a parent that died before the ``prctl`` would otherwise go unnoticed.
* **Under ``forkserver``**, the child's parent is the fork server, which
  outlives the program; the child then watches the program itself
  through a pidfd (readable once that process has ended) from a daemon
  thread, and SIGKILLs itself when it ends. No polling either way.

Shared memory cannot leak (``multiprocessing``'s heap unlinks its files at
once) and the primitives use no named semaphores, so a killed parent
leaves nothing behind in ``/dev/shm``.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a task process: end (SIGKILL) when process ``parent`` ends."""
    if not sys.platform.startswith("linux"):  # pragma: no cover - critsec's processes need Linux
        return
    if os.getppid() == parent:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # it died before the prctl took effect
                os.kill(os.getpid(), signal.SIGKILL)
            return
    _watch(parent)


def _watch(parent: int) -> None:
    try:
        pidfd = os.pidfd_open(parent)
    except ProcessLookupError:  # already gone
        os.kill(os.getpid(), signal.SIGKILL)
        return

    def wait_for_its_end() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_for_its_end, name="critsec-parent-watch", daemon=True).start()
