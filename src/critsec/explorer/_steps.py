"""What a task thread's next instruction means to its thread schedule.

The backend (:mod:`._backends`) calls :meth:`Steps.step` before each
instruction of the user's code that a task thread runs, and
:meth:`Steps.library_call` when the user's code calls a library function
the trace shows. A step may be a switch point (:mod:`._points`), where the
schedule lets the scheduler pick who runs next; a loop head, where a task
that spins is told from one that progresses (:mod:`._fairness`); a read or
write of shared state, shown in the trace (:mod:`._recording`); and, for
the reduction, what the step touches (:mod:`._footprints`). Everything
about *running* the threads -- batons, the runnable set, the end of a
schedule -- is the schedule's (:mod:`._threads`).
"""

from __future__ import annotations

import linecache
import os
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _patches
from ._access import MISSING, Access, evaluate
from ._dpor import Footprint
from ._footprints import Memo, Touched, footprint, stored_place
from ._points import CodeInfo
from ._recording import Accesses
from ._usercode import EXPLORE_DIR, generated

if TYPE_CHECKING:
    from ._threads import _Schedule, _Task

__all__ = ["Steps", "where"]


def where(frame: types.FrameType) -> tuple[str, str]:
    """``("file.py:12", "the source line")`` of where ``frame`` is."""
    filename, line = frame.f_code.co_filename, frame.f_lineno or 0
    return f"{os.path.basename(filename)}:{line}", linecache.getline(filename, line).strip()


class Steps:
    """The steps of one schedule's task threads. Methods run on the task
    thread that holds the baton."""

    def __init__(self, schedule: _Schedule) -> None:
        self.schedule = schedule
        self.scheduler = schedule.scheduler
        self.switch = schedule.switch
        self.event = schedule.event
        driver = schedule.driver
        self.user_code = driver.user_code
        # code object -> analysis (None: not the user's), kept across schedules.
        self.codes: dict[types.CodeType, CodeInfo | None] = driver._codes
        # Code neither the user's nor a synchronisation call (Tracer.on_call).
        self.quiet = driver._quiet
        self.opcodes = driver.granularity == "opcode"
        #: Whether steps are described to the scheduler (``dfs`` reduces).
        self.reducing = self.scheduler.trail is not None
        # What the tasks read and write, for the trace (its names too).
        self.accesses = Accesses(self._emit, self.users)
        self.names, self.repr = self.accesses.names, self.accesses.repr

    def users(self, code: types.CodeType) -> bool:
        """Whether ``code`` is the user's: switch points go inside it."""
        return self.info(code) is not None

    def info(self, code: types.CodeType) -> CodeInfo | None:
        """The analysis of ``code``, or None when it is not the user's."""
        try:
            return self.codes[code]
        except KeyError:
            pass
        user = self.user_code(code.co_filename) and not generated(code)
        info = CodeInfo() if user else None
        self.codes[code] = info
        return info

    def step(self, t: _Task, frame: types.FrameType, offset: int) -> None:
        """Task thread: before the instruction at ``offset`` of ``frame``
        (or a line start, at line granularity, with offset -1)."""
        if self.accesses.pending is not None or self.accesses.expecting is not None:
            self.settle(t)
        t.storing = None
        if offset < 0:
            if self._in_library_call(frame):
                return
            self.switch(t)
            self.event(t, "line", where(frame)[1], where(frame))
            return
        info = self.codes.get(frame.f_code)
        if info is None:
            return
        accesses = info.accesses if info.accesses is not None else info.fill(frame.f_code)
        if (offset in info.points or offset in info.heads) and self._in_library_call(frame):
            # The user's code called back by a library: part of the library
            # call's step, which may then do anything.
            if self.reducing:
                self.scheduler.declare_opaque()
            return
        if self.reducing and offset in info.points:
            t.at = (frame, offset)  # while it waits here: see pending()
        if offset in info.heads:
            self._round(t, frame, offset, info.heads[offset], offset in info.points)
        elif offset in info.points:
            self.switch(t)
        t.at = None
        if offset not in info.points:
            return
        access = accesses.get(offset)
        if self.reducing:
            touched = self._touches(frame, offset, info, t.memo)
            if touched is not None:
                self.scheduler.declare(*touched)
                if access is not None and access.kind == "write" and len(touched[1]) == 1:
                    t.storing = (self.scheduler.trail[-1], next(iter(touched[1])))  # type: ignore[index]
        if access is not None:
            try:
                self._access(t, frame, access)
            except _patches.UncontrolledPrimitive:
                raise  # into the task: a primitive the explorer cannot schedule
            except Exception:  # the trace is a courtesy: never break the program
                pass

    def pending(self, task: int) -> Footprint | None:
        """What ``task``, waiting for its turn, would touch in its next step
        (``Scheduler.pending``, for sleep sets); None: anything. Worked out
        as its step will be once it runs, from its frame and its own notes,
        which do not change while it waits (a copy of the notes: working
        it out writes some). A task that has not begun touches nothing
        until its first switch point; one woken from a wait may touch
        anything."""
        t = self.schedule.tasks[task]
        if t.at is None:
            quiet = not t.begun and self.starts_quietly(t.fn)
            return Footprint(opaque=False) if quiet else None
        frame, offset = t.at
        info = self.codes.get(frame.f_code)
        touched = None if info is None else self._touches(frame, offset, info, dict(t.memo))
        if touched is None:
            return None
        reads, writes, reads_all = touched
        return Footprint(reads=set(reads), writes=set(writes), reads_all=reads_all, opaque=False)

    def starts_quietly(self, fn: Callable[[Any], Any]) -> bool:
        """Whether a task running ``fn`` touches nothing before its first
        switch point: the call of the user's own function does not (a
        library's function may do anything)."""
        return isinstance(fn, types.FunctionType) and self.users(fn.__code__)

    def _touches(self, frame: types.FrameType, offset: int, info: CodeInfo, memo: Memo) -> Touched:
        """What the switch point at ``offset`` of ``frame`` may touch (see
        :func:`~._footprints.footprint`; ``memo``: the task's notes)."""
        accesses = info.accesses if info.accesses is not None else info.fill(frame.f_code)
        opname, argrepr = info.points[offset]
        return footprint(
            frame, opname, argrepr, accesses.get(offset), info.operands.get(offset), memo,
            self.users,
        )  # fmt: skip

    def _in_library_call(self, frame: types.FrameType) -> bool:
        """Whether the user's code in ``frame`` runs inside a call into a
        library -- called back by it: a ``functools.cached_property`` getter,
        a ``logging.Formatter`` subclass, a ``contextmanager`` body. A library
        call is one step, callbacks included: a switch there could leave
        the library's own lock held (3.11's cached_property holds a real
        ``RLock`` around the getter) while another task blocks on it for
        real, which no schedule can undo."""
        caller = frame.f_back
        while caller is not None:
            code = caller.f_code
            if code.co_filename.startswith(EXPLORE_DIR):
                return False  # the task's start, or a controlled primitive
            if self.info(code) is None:
                return True
            caller = caller.f_back
        return False

    def _round(self, t: _Task, frame: types.FrameType, offset: int, line: int, point: bool) -> None:
        """Task thread, at a loop head (of the loop on ``line``; ``point``:
        also a switch point): the task starts a round of a loop. If it
        spins (:mod:`._fairness`), the scheduler picks another task if it
        can; the schedule may end there as a livelock."""
        filename = frame.f_code.co_filename

        def at() -> tuple[str, str]:
            return f"{os.path.basename(filename)}:{line}", linecache.getline(filename, line).strip()

        events, t.round = t.round, []
        outcome = self.schedule.rounds.went_round(
            t.index, (frame.f_code, offset), frame.f_locals.values(), events, at
        )
        if t.index not in self.schedule.rounds.spinning:
            self.switch(t, forced=not point)  # a step either way: see CodeInfo.heads
            return
        if outcome is not None and self.schedule.outcome is None:
            self.schedule.outcome = outcome
        self.switch(t)  # the scheduler picks another task if it can

    def _access(self, t: _Task, frame: types.FrameType, access: Access) -> None:
        # A primitive the explorer cannot schedule raises into the task.
        if access.what == "with":
            _patches.check_controlled(evaluate(access.obj, frame))
            return
        obj = self.accesses.before(t.index, frame, access)
        if access.what == "attr" and obj is not MISSING:
            _patches.check_controlled(obj)

    def _emit(
        self, task: int, kind: str, text: str, filename: str, line: int, location: str, shown: str
    ) -> None:
        at = (f"{os.path.basename(filename)}:{line}", linecache.getline(filename, line).strip())
        self.event(self.schedule.tasks[task], kind, text, at, location=location, value=shown)

    def settle(self, t: _Task) -> None:
        """``t`` went on: a store it made is recorded, and what it stored
        goes on the footprint of its step (see ``_dpor.Footprint.values``)."""
        store = self.accesses.settle()
        if store is not None and t.storing is not None:
            step, place = t.storing
            access, obj, value = store
            if stored_place(access, obj) == place:
                step.values = {place: value}
        t.storing = None

    def library_call(self, t: _Task, frame: types.FrameType) -> Callable[[Any], None] | None:
        """Task thread, when a library function starts in ``frame``: a
        property accessor whose value the trace waits for, or a
        synchronisation API (``Queue.put``, ``Event.wait``) called by the
        user's code. Records what is known now; returns what records the
        result when it is known (the function returns), if anything."""
        if self.accesses.expects(frame.f_code):
            return self.accesses.property_call(frame)
        caller = frame.f_back
        if caller is None or self.info(caller.f_code) is None:
            return None  # called by the library itself: its own business
        code = frame.f_code
        name = code.co_name
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            return None
        obj = frame.f_locals.get("self", MISSING)
        if obj is MISSING:
            return None
        who = getattr(obj, "_label", None) or self.names.of(obj)
        at = where(caller)
        if name == "__enter__":
            # Shown once acquired (after any wait), like a lock's acquire.
            def on_enter(value: Any) -> None:
                self.event(t, "acquire", f"acquire {who}", at, location=who)

            return on_enter
        if name == "__exit__":
            self.event(t, "release", f"release {who}", at, location=who)
            return None
        if name in ("get", "get_nowait"):
            # Shown when it returns, with what it got (after any wait).
            def on_return(value: Any) -> None:
                self.event(t, "call", f"{who}.{name}() ➜ {self.repr.repr(value)}", at, location=who)

            return on_return
        argument = ""
        if code.co_argcount >= 2 and name in ("put", "put_nowait", "add"):
            argument = self.repr.repr(frame.f_locals.get(code.co_varnames[1]))
        self.event(t, "call", f"{who}.{name}({argument})", at, location=who)
        return None
