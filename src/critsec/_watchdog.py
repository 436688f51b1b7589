"""A deadline for code that never yields: an exception raised into a thread.

The cooperative runtimes (coroutines, asyncio) run every task on the
thread that called ``run()``, and switch only where a task yields or
awaits. A task that never does -- ``while True: pass``, a long computation
-- keeps the scheduler from ever looking at the clock, so a timeout checked
at switch points alone is not honoured. Importing a user's file has the
same shape: nothing of critsec's runs until the import returns.

The remedy is the one CPython offers for interrupting pure-Python code
from outside: ``PyThreadState_SetAsyncExc``. A timer thread waits for the
deadline on an event (no polling) and, if the watched block is still
running, asks the interpreter to raise :class:`Overtime` in the watched
thread. The interpreter raises it at the next instruction boundary where
it checks for pending work (a loop's backward jump, a call), so a spinning
task is interrupted within the interpreter's switch interval (5 ms by
default: the time the watchdog may wait for the GIL).

Limits, stated plainly:

* Code blocked inside one C call -- ``time.sleep(1000)``, a socket read,
  a C extension's loop -- gets the exception only when that call returns.
* ``Overtime`` derives from ``BaseException``, so ``except Exception``
  does not swallow it; a bare ``except:`` or ``except BaseException:``
  that does not re-raise does, and the block then runs on (as it would
  after swallowing a ``KeyboardInterrupt``).
* It is raised where the thread happens to be, with one exception: code
  the caller names as *spared* -- critsec's primitives, whose internal
  updates must not be cut in half, and (``library=True``) the standard
  library, whose machinery would be left half-done: an event loop caught
  inside ``close()`` stays open, a ``socket.close()`` cut short leaks its
  socket, asyncio would log and swallow the exception in a callback. While
  the watched thread runs spared code the watchdog looks again every
  millisecond, and fires once the thread is back in the user's code -- or
  at the entry of a spared function, before it changed anything. The look
  and the request happen while the watchdog holds the GIL, and the watched
  thread acts on the request as soon as it takes the GIL back, where it
  stood. (A task that spins inside a library call is interrupted when it
  comes back to its own code between two calls, as a spinning task does.)
* So callers catch it around the whole block and treat it as the timeout,
  wherever it struck.

Leaving the block disarms the watchdog and takes in an exception that was
requested but not raised yet, so ``Overtime`` never strikes after it.
"""

from __future__ import annotations

import ctypes
import os
import site
import sys
import sysconfig
import threading
from collections.abc import Sequence
from types import TracebackType

__all__ = ["Overtime", "Watchdog"]


class Overtime(BaseException):
    """Raised in a watched thread once its :class:`Watchdog`'s time is up.

    Private to critsec: callers turn it into the ``TimeoutError`` (or the
    one-line error) that their users expect.
    """


def _raise_in(thread: int, exception: type[BaseException]) -> None:
    """Have ``exception`` raised in thread ``thread``. The GIL is held
    throughout: ``pythonapi`` is a ``PyDLL``."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exception))


def _check_point() -> None:
    """A call: the interpreter raises a pending asynchronous exception at
    the start of any Python function, so it strikes here if one waits."""


def _folders(*paths: str) -> tuple[str, ...]:
    return tuple({os.path.join(os.path.abspath(path), "") for path in paths if path})


#: The standard library's code, and the installed packages' inside it (which
#: are not the standard library).
_STDLIB = _folders(*(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")))
_SITE = _folders(*site.getsitepackages(), site.getusersitepackages())


def library_code(filename: str) -> bool:
    """Is ``filename`` the standard library's (frozen modules included)?"""
    if filename.startswith("<frozen "):
        return True
    return filename.startswith(_STDLIB) and not filename.startswith(_SITE)


class Watchdog:
    """``with Watchdog(seconds):`` raises :class:`Overtime` in the thread
    that entered the block once ``seconds`` have passed, if the block is
    still running then. ``seconds=None``: no deadline, no thread.

    ``spared``: directories (with a trailing separator) or files whose
    code is not interrupted: the exception waits until the thread runs
    other code; ``library``: the standard library's code is spared too.
    ``fired`` tells, after the block, whether the deadline was reached.
    """

    #: Seconds between two looks while the watched thread runs spared code.
    LOOK_AGAIN = 0.001

    def __init__(
        self, seconds: float | None, spared: Sequence[str] = (), *, library: bool = False
    ) -> None:
        self.seconds = seconds
        self.spared = tuple(spared)
        self.library = library
        self.fired = False
        self._armed = False
        self._guard = threading.Lock()  # armed/fired change together
        self._stop = threading.Event()
        self._target = 0

    def __enter__(self) -> Watchdog:
        if self.seconds is not None:
            self._target = threading.get_ident()
            self._armed = True
            threading.Thread(target=self._watch, name="critsec-watchdog", daemon=True).start()
        return self

    def _watch(self) -> None:
        assert self.seconds is not None
        wait = self.seconds
        while not self._stop.wait(wait):
            with self._guard:
                if not self._armed:
                    return
                if not self._in_spared_code():
                    self.fired = True
                    _raise_in(self._target, Overtime)
                    return
            wait = self.LOOK_AGAIN

    def _in_spared_code(self) -> bool:
        frame = sys._current_frames().get(self._target)
        if frame is None:
            return False
        filename = frame.f_code.co_filename
        return filename.startswith(self.spared) or (self.library and library_code(filename))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.seconds is None:
            return
        with self._guard:
            self._armed = False
            fired = self.fired
        self._stop.set()
        if fired and exc_type is not Overtime:
            # Requested, but perhaps not raised yet: let it strike here, where
            # it is expected, rather than in the caller's code after the
            # block. (Withdrawing it through the C API instead would leave
            # Python 3.11's interpreter-wide "pending" flag set for good.)
            try:
                _check_point()
            except Overtime:
                pass
