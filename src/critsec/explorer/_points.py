"""Switch points of the threads driver: the instructions of the user's
code that another task could observe, and each code object's analysis.

Not every instruction is a switch point: one that only touches the
frame's own stack and locals (``LOAD_FAST``, ``LOAD_CONST``, jumps, ...)
cannot be observed by another task, so switching before it is the same as
switching before the next one that can (:data:`LOCAL_ONLY`). That
cheapest of partial-order reductions divides the decisions of a schedule
by about three, and the schedules ``dfs`` must try by far more. Loop
heads are steps too (see :class:`CodeInfo`).
"""

from __future__ import annotations

import dis
import types
from dataclasses import dataclass, field
from typing import Any

from ._access import Access, analyse

__all__ = ["LOCAL_ONLY", "CodeInfo"]

#: Instructions whose only effects are on the frame's own stack and locals.
#: Another task cannot observe them, so switching just before one is the
#: same as switching before the next instruction that can be observed: they
#: get no switch point (the cheapest partial-order reduction there is, and a
#: big one: most instructions are these). Anything not listed -- loads and
#: stores of shared places, calls, operators that may run ``__dunder__``
#: code or read a container -- is a switch point.
LOCAL_ONLY = frozenset(
    {
        "CACHE", "EXTENDED_ARG", "NOP", "RESUME", "NOT_TAKEN",
        "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST",
        "STORE_FAST", "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST", "DELETE_FAST",
        "LOAD_CONST", "LOAD_SMALL_INT", "RETURN_CONST", "RETURN_VALUE",
        "POP_TOP", "COPY", "SWAP", "PUSH_NULL", "KW_NAMES", "PRECALL",
        "MAKE_CELL", "COPY_FREE_VARS", "IS_OP", "BUILD_TUPLE",
        "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE",
        "POP_JUMP_FORWARD_IF_NONE", "POP_JUMP_FORWARD_IF_NOT_NONE",
        "POP_JUMP_BACKWARD_IF_NONE", "POP_JUMP_BACKWARD_IF_NOT_NONE",
        "JUMP", "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
        "JUMP_NO_INTERRUPT", "LOAD_ASSERTION_ERROR",
    }
)  # fmt: skip


@dataclass(slots=True)
class CodeInfo:
    #: offset -> shared access, and each switch point's offset -> its
    #: instruction (opname, argrepr); both computed on the first instruction
    #: run (None until then).
    accesses: dict[int, Access] | None = None
    points: dict[int, tuple[str, str]] = field(default_factory=dict)
    #: Loop heads (targets of backward jumps): where a task starts a round
    #: of a loop. Each is a step even when not a switch point, so that a
    #: loop of purely local instructions ends in the step limit's error
    #: instead of running forever; and where spinning is seen (``_round``).
    #: Each maps to the line of the jump back to it: the loop's own line
    #: (``while ...:``), where a spin is reported.
    heads: dict[int, int] = field(default_factory=dict)
    #: What some instructions work on (``analyse``'s operands): for footprints.
    operands: dict[int, tuple[Any, ...]] = field(default_factory=dict)

    def fill(self, code: types.CodeType) -> dict[int, Access]:
        """Analyse ``code`` (on the first instruction it runs); its accesses."""
        self.accesses = analyse(code, self.operands)
        self.points, self.heads = switch_points(code)
        return self.accesses


def switch_points(code: types.CodeType) -> tuple[dict[int, tuple[str, str]], dict[int, int]]:
    instructions = list(dis.get_instructions(code))
    points = {i.offset: (i.opname, i.argrepr) for i in instructions if i.opname not in LOCAL_ONLY}
    # 3.11 has POP_JUMP_BACKWARD_IF_*, 3.12+ JUMP_BACKWARD after a forward test.
    heads = {
        i.argval: i.positions.lineno if i.positions and i.positions.lineno else 0
        for i in instructions
        if "JUMP_BACKWARD" in i.opname
    }
    return points, heads
