"""The trace's reads and writes: one recorder behind every driver's tracer.

Design
------
Each driver sees a task's instructions its own way -- the thread driver's
backends (:mod:`._backends`) at its switch points, the generator and
asyncio drivers' ``sys.settrace`` function (``_generators.StepTracer``) at
each opcode -- but what an instruction that reads or writes shared state
shows in the trace is the same for all of them, and is decided here:

* a read shows the value about to be read (``State.value ➜ 0``; ``'k' in
  dict ➜ True`` for a dict's membership test);
* a store shows the value once it is there (``State.value = 1``), so the
  driver says when the task went on (:meth:`Accesses.settle`); a ``del``
  is shown as it is tried (a failed ``del`` explains a failure);
* a property that is not the user's code (critsec's ``counter.value``)
  shows its getter's return, or its setter's argument: the recorder waits
  for that call (:meth:`Accesses.property_call`);
* objects are named by where they were first read from (``State.lock``),
  else by type and order of first sight (``Counter#2``), never by address,
  so the same schedule gives the same trace.

Which instruction touches what, and the values, come from :mod:`._access`
(worked out once per code object; values peeked without running code).
What an event looks like around this -- its place in the source, a line
event it stands for -- is the driver's (``emit``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from ._access import (
    DELETED,
    MISSING,
    Access,
    Names,
    ShortRepr,
    deleted_before,
    is_data,
    locate,
    peek_attr,
    peek_read,
    peek_written,
    property_code,
)

__all__ = ["Accesses", "Emit", "Store"]

#: How the recorder hands an event to its driver: (task, kind -- "read" or
#: "write" --, text, file name and line of the access, location, value shown).
Emit = Callable[[int, str, str, str, int, str, str], None]
#: A store that ran: (its access, the object it stored into -- as
#: :func:`~._access.locate` gives it --, the value now there).
Store = tuple[Access, Any, Any]


class Accesses:
    """The reads and writes of one schedule's tasks, as trace events.

    One task runs at a time; the driver calls :meth:`before` ahead of an
    instruction that accesses shared state, :meth:`settle` at the task's
    next event, and :meth:`property_call` when a library function starts.
    ``users`` says whether code is the user's (then it is traced itself,
    and its property accessors need no waiting for)."""

    def __init__(self, emit: Emit, users: Callable[[types.CodeType], bool]) -> None:
        self.names = Names()
        self.repr = ShortRepr(self.names)
        self._emit = emit
        self._users = users
        # A store seen before it ran: (task, access, frame, its line, object,
        # display name, location). Drivers read it: anything to settle?
        self.pending: tuple[int, Access, types.FrameType, int, Any, str, str] | None = None
        # A property accessor (not the user's code) whose call the trace waits
        # for: (its code, task, "read" | "write", file, line, display, location).
        self.expecting: tuple[types.CodeType, int, str, str, int, str, str] | None = None

    def before(self, task: int, frame: types.FrameType, access: Access) -> Any:
        """Task ``task`` is about to run the instruction of ``access`` in
        ``frame``. Returns the object it works on (as
        :func:`~._access.locate` gives it; ``MISSING`` if unknown). Never
        raises: the trace is a courtesy, the instruction itself will raise
        if it must."""
        try:
            obj, display, location = locate(access, frame, self.names)
            if obj is MISSING:
                return obj
            line = frame.f_lineno
            if access.op == "del":
                if deleted_before(access, frame, obj) is not MISSING:
                    shown = self.repr.repr(DELETED)
                    where = frame.f_code.co_filename
                    self._emit(task, "write", f"del {display}", where, line, location, shown)
                return obj
            if access.kind == "write":
                self.pending = (task, access, frame, line, obj, display, location)
                if access.what == "attr":
                    value = peek_attr(obj, access.name)
                    self._expect(value, "write", task, frame, display, location)
                return obj
            value = peek_read(access, frame, obj)
        except Exception:
            return MISSING
        if isinstance(value, property):
            self._expect(value, "read", task, frame, display, location)
        elif value is MISSING:
            pass
        elif is_data(value):
            if access.op:  # key in container: is the item there
                container, key = obj
                shown = self.repr.repr(value)
                text = f"{key!r} in {self.names.of(container)} ➜ {shown}"
                self._emit(task, "read", text, frame.f_code.co_filename, line, location, shown)
                return obj
            # A container read from an item of another is named after it too
            # (``dict['cache']['k']``, not ``dict#2['k']``).
            self.names.remember(value, display)
            self._value(task, "read", frame.f_code.co_filename, line, display, location, value)
        elif access.what != "subscr" and not callable(value):
            # An object reached through a named place (a lock in `state.lock`)
            # is called by that name in the trace, unless it already has one.
            self.names.adopt(value, display)
        return obj

    def settle(self, frame: types.FrameType | None = None, failed: bool = False) -> Store | None:
        """The task went on after the instruction ``before`` saw (to an
        instruction in ``frame``, if given: a store in another frame is not
        done yet); ``failed``: it raised. Records a store's value and
        returns the store, if one ran; stops waiting for a property call."""
        self.expecting = None
        pending = self.pending
        if pending is None or (frame is not None and pending[2] is not frame):
            return None
        self.pending = None
        task, access, at, line, obj, display, location = pending
        if failed:  # the store raised: nothing was written
            return None
        try:
            value = peek_written(access, at, obj)
        except Exception:
            return None
        if value is MISSING:
            return None
        if is_data(value):
            self._value(task, "write", at.f_code.co_filename, line, display, location, value)
        return access, obj, value

    def expects(self, code: types.CodeType) -> bool:
        """Whether the trace waits for a call of ``code`` (a property's accessor)."""
        return self.expecting is not None and self.expecting[0] is code

    def property_call(self, frame: types.FrameType) -> Callable[[Any], None] | None:
        """A library function starts in ``frame``. If it is the property
        accessor :meth:`before` waited for: a setter's argument is recorded
        now; for a getter, returns what records its result (to be called
        with the value it returns, not if it raises)."""
        if not self.expects(frame.f_code):
            return None
        assert self.expecting is not None
        _, task, kind, filename, line, display, location = self.expecting
        self.expecting = None
        if kind == "write":
            names = frame.f_code.co_varnames
            if frame.f_code.co_argcount >= 2:
                value = frame.f_locals[names[1]]
                self._value(task, "write", filename, line, display, location, value)
            return None

        def on_return(value: Any) -> None:
            if is_data(value):
                self._value(task, "read", filename, line, display, location, value)

        return on_return

    def _expect(
        self,
        value: Any,
        kind: str,
        task: int,
        frame: types.FrameType,
        display: str,
        location: str,
    ) -> None:
        """A property's value is its getter's return (its setter's argument):
        wait for that call, unless it is the user's code (traced anyway)."""
        code = property_code(value, kind)
        if code is not None and not self._users(code):
            self.pending = None
            filename, line = frame.f_code.co_filename, frame.f_lineno
            self.expecting = (code, task, kind, filename, line, display, location)

    def _value(
        self,
        task: int,
        kind: str,
        filename: str,
        line: int,
        display: str,
        location: str,
        value: Any,
    ) -> None:
        shown = self.repr.repr(value)
        text = f"{display} ➜ {shown}" if kind == "read" else f"{display} = {shown}"
        self._emit(task, kind, text, filename, line, location, shown)
