"""How switch points are placed: ``sys.settrace`` or ``sys.monitoring``.

A backend only *finds* the moments a task thread of a schedule is about to
run an instruction (or a line) of the user's code, and the calls into the
library that the trace wants to see; what happens there -- a decision, a
switch, a trace event -- is :mod:`._steps`' and the schedule's. Two
backends, one interface: :class:`Tracer` (``sys.settrace`` opcode events,
every Python; installed by each task thread) and :class:`Monitoring`
(``sys.monitoring`` instruction events, 3.12+, process-wide, switched on per
code object for the user's code only).
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._usercode import is_sync_api

if TYPE_CHECKING:
    from ._threads import _Schedule, _Task

__all__ = ["BACKEND", "BACKENDS", "Monitoring", "Tracer", "return_tracer"]


class Tracer:
    """The ``sys.settrace`` functions of one task thread."""

    def __init__(self, schedule: _Schedule, task: _Task) -> None:
        self.steps = schedule.steps
        self.step = schedule.steps.step
        self.task = task
        self.opcodes = self.steps.opcodes

    def on_call(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        steps, t = self.steps, self.task
        code = frame.f_code
        if code in steps.quiet and steps.accesses.expecting is None:
            # Most calls: settrace calls this for every Python frame a task
            # thread starts, the explorer's own bookkeeping's too (a lock's
            # acquire runs about fifteen), so the common answer comes first.
            return None
        if steps.info(code) is None:  # not the user's code: no switch points inside
            if steps.accesses.expects(code) or is_sync_api(code):
                on_return = steps.library_call(t, frame)
                if on_return is not None:
                    frame.f_trace_lines = False
                    return return_tracer(on_return)
            else:
                steps.quiet.add(code)
            return None
        if self.opcodes:
            # f_trace first: on 3.12+ setting f_trace_opcodes only instruments
            # the code if the frame already has its local tracer.
            frame.f_trace = self.on_event
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
        return self.on_event

    def on_event(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.step(self.task, frame, frame.f_lasti)
        elif event == "line":
            self.step(self.task, frame, -1)
        return self.on_event


def return_tracer(on_return: Callable[[Any], None]) -> Callable[..., Any]:
    """A local ``sys.settrace`` function that calls ``on_return`` with what
    its frame returns -- not if it raises."""

    def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "exception":
            return None  # it raised (or may: then it returns nothing worth showing)
        if event != "return":
            return trace
        on_return(arg)
        return None

    return trace


_monitoring: Any = getattr(sys, "monitoring", None)  # 3.12+
#: The ``user_code`` predicate under which ``Monitoring.on_start`` last
#: returned DISABLE for code it found not to be the user's.
_disabled_under: Callable[[str], bool] | None = None


class Monitoring:
    """The ``sys.monitoring`` backend (3.12+) for one schedule.

    Events are process-wide, so each callback first finds the task of the
    calling thread and returns at once for any other thread. ``PY_START``
    is on for all code while the schedule runs; instruction (or line)
    events are switched on per code object, for the user's code only, the
    first time a task enters it, and all of it is switched off again at the
    end: nothing stays instrumented after the schedule.
    """

    #: Tool ids to try, in order (0-2 and 5 are the conventional debugger,
    #: coverage, profiler and optimizer ids).
    TOOL_IDS = (4, 3, 5, 2, 1, 0)

    def __init__(self, schedule: _Schedule) -> None:
        self.schedule = schedule
        self.enabled: set[types.CodeType] = set()  # instruction or line events
        self.watched: set[types.CodeType] = set()  # return events
        # (code, task) -> what to do when that call returns.
        self.returns: dict[tuple[types.CodeType, int], Callable[[Any], None]] = {}
        events = _monitoring.events
        self.steps = schedule.steps
        self.step_event = events.INSTRUCTION if self.steps.opcodes else events.LINE
        self.tool = -1

    def __enter__(self) -> Monitoring:
        m, events = _monitoring, _monitoring.events
        free = [tool for tool in self.TOOL_IDS if m.get_tool(tool) is None]
        if not free:
            raise RuntimeError(
                "every sys.monitoring tool id is taken (by debuggers, coverage, profilers): "
                "the explorer needs one to place its switch points"
            )
        self.tool = free[0]
        m.use_tool_id(self.tool, "critsec explorer")
        # A DISABLE outlives the tool: code found not to be the user's under
        # another predicate (before an explore with include=) must be seen
        # again. Under the same one, it stays off (restarting is not free:
        # it re-enables every tool's events, coverage's too).
        global _disabled_under
        if _disabled_under is not self.schedule.driver.user_code:
            if _disabled_under is not None:
                m.restart_events()
            _disabled_under = self.schedule.driver.user_code
        m.register_callback(self.tool, events.PY_START, self.on_start)
        m.register_callback(self.tool, events.PY_RETURN, self.on_return)
        if self.steps.opcodes:
            m.register_callback(self.tool, events.INSTRUCTION, self.on_instruction)
        else:
            m.register_callback(self.tool, events.LINE, self.on_line)
        m.set_events(self.tool, events.PY_START)
        return self

    def __exit__(self, *exc: object) -> None:
        m, events = _monitoring, _monitoring.events
        m.set_events(self.tool, 0)
        for code in self.enabled | self.watched:
            m.set_local_events(self.tool, code, 0)
        for event in (events.PY_START, events.PY_RETURN, events.INSTRUCTION, events.LINE):
            m.register_callback(self.tool, event, None)
        m.free_tool_id(self.tool)

    def _task(self) -> _Task | None:
        t = self.schedule.by_ident.get(threading.get_ident())
        return None if t is None or t.finished else t

    def on_start(self, code: types.CodeType, offset: int) -> Any:
        t = self._task()
        if t is None:
            return None
        steps = self.steps
        if steps.info(code) is not None:
            if code not in self.enabled:
                self.enabled.add(code)
                _monitoring.set_local_events(self.tool, code, self.step_event)
            return None
        if not steps.accesses.expects(code) and not is_sync_api(code):
            # Never interesting: stop the event for this code (until the
            # events are switched off at the end of the schedule).
            return _monitoring.DISABLE
        on_return = steps.library_call(t, sys._getframe(1))
        if on_return is not None:
            self.returns[code, t.index] = on_return
            if code not in self.watched:
                self.watched.add(code)
                _monitoring.set_local_events(self.tool, code, _monitoring.events.PY_RETURN)
        return None

    def on_return(self, code: types.CodeType, offset: int, value: Any) -> None:
        t = self._task()
        if t is not None and (on_return := self.returns.pop((code, t.index), None)):
            on_return(value)

    def on_instruction(self, code: types.CodeType, offset: int) -> None:
        t = self._task()
        if t is not None:
            self.steps.step(t, sys._getframe(1), offset)

    def on_line(self, code: types.CodeType, line: int) -> None:
        t = self._task()
        if t is not None:
            self.steps.step(t, sys._getframe(1), -1)


#: The ways to place switch points on this Python.
BACKENDS = ("monitoring", "settrace") if _monitoring is not None else ("settrace",)
#: The default: ``sys.monitoring`` where it exists. Measured on 3.13 (two
#: tasks, PCT, best of 5 runs): a three-line locked increment takes 0.33 ms
#: per schedule against 0.43 ms with ``sys.settrace``, a 200-iteration loop
#: 35 ms against 51 ms -- monitoring switches off the call event of library
#: code after its first call and never builds frame objects for events.
BACKEND = BACKENDS[0]
