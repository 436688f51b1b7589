"""A task that would end the process fails its schedule instead.

The explorer runs the user's tasks in its own process. A task that calls
``os._exit(0)`` would end the exploration -- and the ``critsec`` command,
with status 0: a pass nobody saw. ``sys.exit()`` only raises
``SystemExit``, but an event loop lets that one through, and so would any
driver that treats only ``Exception`` as a task's failure.

So while an exploration runs, the calls that end a process raise
:class:`ProcessExit` where the explored program made them -- a task, or
setup or the invariant (the thread that called ``explore``) -- naming the
call. Other threads of the process (a test runner's watchdog, say) and
processes forked meanwhile keep the real functions:

* ``os._exit``, ``os.abort``;
* ``os.kill``/``os.killpg`` aimed at this process (or its group, or every
  process), ``signal.raise_signal`` and ``signal.pthread_kill``, with a
  signal that would end or stop it: ``SIGKILL``, ``SIGSTOP``, or one whose
  handler is the default and whose default is not to ignore it.

``ProcessExit`` is a ``SystemExit``, and every driver reports a task's
``SystemExit`` (``sys.exit()`` included) as a failure of kind
``"exception"`` with the line that raised it. Like ``sys.exit()``, it is
not caught by ``except Exception``.

What this cannot see: the functions are replaced in the ``os`` and
``signal`` modules, so a name imported before the exploration (``from os
import _exit``) still reaches the real one, and so does C code that calls
``exit()`` or ``kill()`` itself. Such a task still ends the process; it
never makes the explorer report a pass, since no result is printed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._patches import active

__all__ = ["ProcessExit", "ProcessExitsRefused"]


class ProcessExit(SystemExit):
    """Raised in a task (or setup, or invariant) that called a function
    ending the process while the explorer ran it: the schedule fails with
    kind ``"exception"`` instead of the exploration ending unseen."""

    __module__ = "critsec.explorer"

    def __init__(self, call: str) -> None:
        super().__init__(f"{call} would end the explorer's process")
        #: The call refused, as written: ``"os._exit(0)"``.
        self.call = call


#: Signals whose default action is to be ignored (POSIX); every other
#: signal left at its default ends or stops the process.
_IGNORED_BY_DEFAULT = frozenset(
    getattr(signal, name)
    for name in ("SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH")
    if hasattr(signal, name)
)


def _fatal(signum: int) -> bool:
    """Would delivering ``signum`` to this process end or stop it?"""
    if signum in (signal.SIGKILL, signal.SIGSTOP):
        return True
    try:
        handler = signal.getsignal(signum)
    except ValueError:  # not a signal number: the real call will say so
        return False
    return handler == signal.SIG_DFL and signum not in _IGNORED_BY_DEFAULT


def _target(pid: int) -> str:
    """A pid as the call would have spelt it: traces must read the same on
    every run, and this process's pid does not."""
    if pid == os.getpid():
        return "os.getpid()"
    if pid == -os.getpgrp():
        return "-os.getpgrp()"
    return str(pid)


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class ProcessExitsRefused:
    """``with ProcessExitsRefused():`` -- the span of an exploration: the
    calls listed in the module docs raise :class:`ProcessExit` instead of
    ending the process. Restores the real functions on exit."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Callable[..., Any]]] = []
        self._pid = os.getpid()
        self._explorer = threading.get_ident()

    def _explored(self) -> bool:
        """Is the caller the explored program (not another thread, not a
        child process)?"""
        if os.getpid() != self._pid:
            return False
        control = active()  # a thread task's schedule, if one runs
        in_task = control is not None and control.task() is not None
        return in_task or threading.get_ident() == self._explorer

    def __enter__(self) -> ProcessExitsRefused:
        real_exit, real_abort = os._exit, os.abort
        real_kill, real_killpg = os.kill, os.killpg
        real_raise, real_pthread_kill = signal.raise_signal, signal.pthread_kill
        explored = self._explored

        def _exit(status: int) -> None:
            if explored():
                raise ProcessExit(f"os._exit({status!r})")
            real_exit(status)

        def abort() -> None:
            if explored():
                raise ProcessExit("os.abort()")
            real_abort()

        def kill(pid: int, signum: int) -> None:
            me = pid in (os.getpid(), 0, -1) or pid == -os.getpgrp()
            if me and _fatal(signum) and explored():
                raise ProcessExit(f"os.kill({_target(pid)}, {_name(signum)})")
            real_kill(pid, signum)

        def killpg(pgid: int, signum: int) -> None:
            if pgid in (0, os.getpgrp()) and _fatal(signum) and explored():
                group = "os.getpgrp()" if pgid else "0"
                raise ProcessExit(f"os.killpg({group}, {_name(signum)})")
            real_killpg(pgid, signum)

        def raise_signal(signum: int) -> None:
            if _fatal(signum) and explored():
                raise ProcessExit(f"signal.raise_signal({_name(signum)})")
            real_raise(signum)

        def pthread_kill(thread_id: int, signum: int) -> None:
            # Any thread of this process: a fatal signal ends all of them.
            if _fatal(signum) and explored():
                raise ProcessExit(f"signal.pthread_kill(..., {_name(signum)})")
            real_pthread_kill(thread_id, signum)

        replacements: list[tuple[Any, str, Callable[..., Any]]] = [
            (os, "_exit", _exit),
            (os, "abort", abort),
            (os, "kill", kill),
            (os, "killpg", killpg),
            (signal, "raise_signal", raise_signal),
            (signal, "pthread_kill", pthread_kill),
        ]
        for module, name, replacement in replacements:
            self._saved.append((module, name, getattr(module, name)))
            setattr(module, name, replacement)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)
        self._saved.clear()
