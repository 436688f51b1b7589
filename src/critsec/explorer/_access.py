"""Which shared value a bytecode instruction reads or writes, and how to show it.

Design
------
Both tracing drivers -- threads (:mod:`._threads`) and generators/asyncio
(:mod:`._generators`, :mod:`._asyncio`) -- record a task's reads and writes
of shared state as trace events. Neither sees the value stack: a trace
function or a ``sys.monitoring`` callback only learns *which* instruction
is about to run. What that instruction touches is therefore worked out
from the bytecode, once per code object (:func:`analyse`): a linear pass
with a symbolic stack over ``dis`` output, reset at jump targets, that
remembers for each value on the stack how it was obtained (a local, a
global, a closure variable, a constant, an attribute of one of those).
An instruction that loads or stores a global, a closure variable, an
attribute or a subscript then becomes an :class:`Access` naming its object
and key as such expressions, which the driver evaluates in the live frame
when the instruction is reached (:func:`locate`).
A membership test ``key in d`` (``not in``) is a read of ``d[key]``, its
value whether the key is there; a ``del`` of an item, an attribute or a
global is a write, shown as ``<deleted>`` -- so a check-then-act on a dict
pairs into a conflict like any read and write.

Evaluating must not change what the program does, so values are *peeked*
(:func:`peek_attr`): an instance's ``__dict__``, slots and class
attributes, never ``__getattr__`` or a descriptor's ``__get__``. A
property is returned as the property object, and the driver takes its
value from the getter's return (or the setter's argument) when the
property's code runs -- how it catches that call is the driver's business.
What cannot be followed is simply not shown: the trace is a courtesy.

Objects are named by type and order of first sight (``Counter``,
``Counter#2``) or after the place they were first read from, never by
address (:class:`Names`, :class:`ShortRepr`, :func:`describe_object`), so
the same schedule gives the same trace text on every run -- replay
promises that.

What stays in the drivers: where switch points go and how tasks are
suspended (batons and ``sys.monitoring`` for threads, ``yield`` and
``sys.settrace`` line tracking for generators), when a write's value is
known (the next event of the same task), and which objects are named after
their place (the generator trace names any object so, the thread trace only
containers).
"""

from __future__ import annotations

import dis
import re
import reprlib
import sys
import types
from dataclasses import dataclass
from typing import Any

from ..runtimes._ccounter import Counter

__all__ = [
    "DELETED",
    "MISSING",
    "Access",
    "Names",
    "ShortRepr",
    "analyse",
    "deleted_before",
    "describe_object",
    "evaluate",
    "is_data",
    "locate",
    "peek_attr",
    "peek_read",
    "peek_written",
    "property_code",
    "short",
]

#: "No value": unknown, or it would take running code to know.
MISSING: Any = object()

#: The cooperative runtimes' counter keeps its value in C: a descriptor
#: that reads a field and runs no code, so it is peeked like a slot.
_COUNTER_VALUE = Counter.__dict__["value"]

# -- what an instruction touches: a symbolic stack over dis, once per code object --

# An expression whose value is on the stack: ("fast"|"deref"|"global", name),
# ("const", value), ("attr", expr, name), ("subscr", expr, expr); None when not
# known. Only for operands (see ``analyse``), never evaluated: ("call", expr)
# a call's result, ("iter", expr) an iterator over expr, ("exit", expr) the
# ``__exit__`` of a with statement's context manager, ("method", expr, name)
# a method about to be called on expr, ("binop", expr, expr) an operator's
# result, ("tuple", expr, ...) a tuple built of those.
Expr = tuple[Any, ...] | None
_OPAQUE_KINDS = frozenset({"call", "iter", "exit", "method", "binop", "tuple"})


@dataclass(frozen=True, slots=True)
class Access:
    """What one instruction reads or writes."""

    kind: str  # "read", "write", or "use" (a with statement's context manager)
    what: str  # "global", "deref", "attr", "subscr", "with"
    name: str  # the variable or attribute name ("" for subscripts)
    obj: Expr = None  # attr: the object; subscr: the container
    key: Expr = None  # subscr: the key
    #: "" for a load or store; "in" / "not in" for ``key in container`` (a
    #: read of ``container[key]``: is it there), "del" for a ``del`` (a write).
    op: str = ""


# Forward jumps whose stack at the target is followed: as it is (JUMP_FORWARD)
# or less the tested value (POP_JUMP_*); and what never falls through.
_FORWARD_JUMPS = frozenset(
    {
        "JUMP_FORWARD", "JUMP", "JUMP_NO_INTERRUPT", "POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE",
        "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE", "POP_JUMP_FORWARD_IF_FALSE",
        "POP_JUMP_FORWARD_IF_TRUE", "POP_JUMP_FORWARD_IF_NONE", "POP_JUMP_FORWARD_IF_NOT_NONE",
    }
)  # fmt: skip
_NO_FALL_THROUGH = frozenset(
    {
        "JUMP_FORWARD", "JUMP", "JUMP_NO_INTERRUPT", "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT", "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE",
    }
)  # fmt: skip
# Opcodes that leave the stack alone (stack_effect 0 but no push either).
_NEUTRAL = frozenset({"NOP", "RESUME", "EXTENDED_ARG", "CACHE", "KW_NAMES", "NOT_TAKEN"})
_NULL_AFTER_GLOBAL = sys.version_info >= (3, 13)  # "x + NULL" instead of "NULL + x"
_METHOD_FLAG_IN_LOAD_ATTR = sys.version_info >= (3, 12)


def _method(obj: Expr, name: str) -> list[Expr]:
    """What a method load leaves for the call: the method, then its object
    (or NULL and the bound method: the call finds the callable either way)."""
    return [None if obj is None else ("method", obj, name), obj]


def analyse(
    code: types.CodeType, operands: dict[int, tuple[Expr, ...]] | None = None
) -> dict[int, Access]:
    """Offset -> what the instruction there reads or writes, for the
    instructions that touch shared state. A linear pass with a symbolic
    stack, reset at jump targets; what cannot be followed becomes None
    (the access is then simply not shown). Pure; callers cache it.

    ``operands``, if given, is filled with what some other instructions
    work on, for partial-order reduction (:mod:`._footprints`): a binary
    operator's two operands, a call's callable and arguments, ``GET_ITER``'s
    iterable, ``FOR_ITER``'s iterator, what ``UNPACK_SEQUENCE`` unpacks."""
    accesses: dict[int, Access] = {}
    stack: list[Expr] = []
    whole = True  # no reset yet: `stack` is the whole stack, bottom included
    noted: dict[int, tuple[Expr, ...]] = {} if operands is None else operands
    calling: Expr = None  # 3.11: the callable, seen at PRECALL, for the CALL after it
    arguments: tuple[Expr, ...] = ()

    def top(n: int = 1) -> Expr:
        return stack[-n] if len(stack) >= n else None

    def pop(n: int) -> None:
        nonlocal whole
        whole = whole and len(stack) >= n  # else the bottom is lost
        del stack[max(0, len(stack) - n) :]

    # Stacks that forward jumps carry to their targets; a target is known
    # only if every way into it brings the same stack (else: reset).
    falls_through = True
    arriving: dict[int, list[list[Expr]]] = {}
    unsure: set[int] = set()
    # An exception handler starts with its protected range's stack up to the
    # entry's depth (untouched by the exception), then lasti and the exception.
    entries = getattr(dis.Bytecode(code), "exception_entries", [])
    handlers = {entry.target for entry in entries}  # (3.11 does not mark them as targets)
    protecting: dict[int, list[Any]] = {}  # offset -> the entries whose range starts there
    for entry in entries:
        protecting.setdefault(entry.start, []).append(entry)
    for ins in dis.get_instructions(code):
        op, arg, name = ins.opname, ins.arg, ins.argval
        at = ins.offset
        if (ins.is_jump_target or at in handlers) and op != "FOR_ITER":
            # (A loop's head keeps its iterator: the body leaves the stack as
            # it found it, so the fall-through path's stack is the loop's.)
            ways = arriving.pop(at, []) + ([stack] if falls_through else [])
            known = at not in unsure and ways and all(way == ways[0] for way in ways)
            stack = list(ways[0]) if known else []
            whole = whole and bool(known)
        for entry in protecting.get(at, ()):
            # (Only a stack followed from the start is the whole stack,
            # which the entry's depth counts from the bottom of.)
            if not whole or len(stack) < entry.depth:
                unsure.add(entry.target)
            else:
                base = stack[: entry.depth] + [None] * (1 + bool(entry.lasti))
                arriving.setdefault(entry.target, []).append(base)
        falls_through = op not in _NO_FALL_THROUGH
        if op in _FORWARD_JUMPS and isinstance(ins.argval, int) and ins.argval > at:
            carried = stack[:-1] if op.startswith("POP_JUMP") else list(stack)
            arriving.setdefault(ins.argval, []).append(carried)
        elif (ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs) and (
            isinstance(ins.argval, int) and ins.argval > at
        ):
            unsure.add(ins.argval)  # a jump whose stack is not followed
        if op == "LOAD_GLOBAL" or op == "LOAD_NAME":
            accesses[at] = Access("read", "global", name)
            expr: Expr = ("global", name)
            null = op == "LOAD_GLOBAL" and arg is not None and arg & 1
            if null and not _NULL_AFTER_GLOBAL:
                stack.append(None)
            stack.append(expr)
            if null and _NULL_AFTER_GLOBAL:
                stack.append(None)
        elif op in ("STORE_GLOBAL", "STORE_NAME"):
            accesses[at] = Access("write", "global", name)
            pop(1)
        elif op in ("LOAD_DEREF", "LOAD_CLASSDEREF"):
            accesses[at] = Access("read", "deref", name)
            stack.append(("deref", name))
        elif op == "STORE_DEREF":
            accesses[at] = Access("write", "deref", name)
            pop(1)
        elif op in ("DELETE_GLOBAL", "DELETE_NAME"):
            accesses[at] = Access("write", "global", name, op="del")
        elif op == "DELETE_DEREF":
            accesses[at] = Access("write", "deref", name, op="del")
        elif op in ("LOAD_FAST", "LOAD_FAST_CHECK"):
            stack.append(("fast", name))
        elif op == "LOAD_FAST_LOAD_FAST":
            stack += [("fast", name[0]), ("fast", name[1])]
        elif op == "LOAD_CONST":
            stack.append(("const", name))
        elif op == "LOAD_ATTR":
            obj = top()
            accesses[at] = Access("read", "attr", name, obj)
            pop(1)
            if _METHOD_FLAG_IN_LOAD_ATTR and arg is not None and arg & 1:
                stack += _method(obj, name)
            else:
                stack.append(None if obj is None else ("attr", obj, name))
        elif op == "LOAD_METHOD":  # 3.11: a method is read (and checked, not shown)
            obj = top()
            accesses[at] = Access("read", "attr", name, obj)
            pop(1)
            stack += _method(obj, name)
        elif op == "STORE_ATTR":
            accesses[at] = Access("write", "attr", name, top())
            pop(2)
        elif op == "DELETE_ATTR":
            accesses[at] = Access("write", "attr", name, top(), op="del")
            pop(1)
        elif op == "BEFORE_WITH":
            # Only checked (a primitive made outside the schedule), not shown.
            manager = top()
            accesses[at] = Access("use", "with", "", manager)
            pop(1)
            stack += [None if manager is None else ("exit", manager), None]
        elif op in ("PRECALL", "CALL") and arg is not None:
            # The callable: below the arguments, under a NULL or self slot
            # (3.11, 3.12: NULL/method, callable/self; 3.13: callable, self/NULL).
            if op == "PRECALL" or calling is None:
                deep, shallow = top(arg + 2), top(arg + 1)
                calling = deep if deep is not None else shallow
                arguments = tuple(top(n) for n in range(arg, 0, -1))
            if op == "CALL":
                noted[at] = (calling, *arguments)
                pop(arg + 2)
                stack.append(None if calling is None else ("call", calling))
                calling = None
        elif op == "GET_ITER":
            iterable = top()
            noted[at] = (iterable,)
            pop(1)
            stack.append(None if iterable is None else ("iter", iterable))
        elif op == "FOR_ITER":
            noted[at] = (top(),)
            stack.append(None)
        elif op == "BINARY_OP":
            left, right = top(2), top(1)
            noted[at] = (left, right)
            pop(2)
            stack.append(None if left is None or right is None else ("binop", left, right))
        elif op == "BUILD_TUPLE" and arg is not None:
            items = tuple(top(n) for n in range(arg, 0, -1))
            pop(arg)
            stack.append(None if None in items else ("tuple", *items))
        elif op == "UNPACK_SEQUENCE" and arg is not None:
            noted[at] = (top(),)
            pop(1)
            stack += [None] * arg
        elif op == "BINARY_SUBSCR":
            container, key = top(2), top(1)
            accesses[at] = Access("read", "subscr", "", container, key)
            pop(2)
            known = container is not None and key is not None
            stack.append(("subscr", container, key) if known else None)
        elif op == "STORE_SUBSCR":
            accesses[at] = Access("write", "subscr", "", top(2), top(1))
            pop(3)
        elif op == "DELETE_SUBSCR":
            accesses[at] = Access("write", "subscr", "", top(2), top(1), op="del")
            pop(2)
        elif op == "CONTAINS_OP":  # key in container (arg 1: not in), same on 3.11-3.13
            test = "not in" if arg is not None and arg & 1 else "in"
            accesses[at] = Access("read", "subscr", "", top(1), top(2), op=test)
            pop(2)
            stack.append(None)
        elif op in ("POP_TOP", "STORE_FAST", "POP_EXCEPT"):  # (the rest stays known)
            pop(1)
        elif op == "PUSH_EXC_INFO":  # the exception goes on top of the one before
            pop(1)
            stack += [None, None]
        elif op == "WITH_EXCEPT_START":  # __exit__'s result on top
            stack.append(None)
        elif op == "STORE_FAST_STORE_FAST":
            pop(2)
        elif op == "STORE_FAST_LOAD_FAST":
            pop(1)
            stack.append(("fast", name[1]))
        elif op == "PUSH_NULL":
            stack.append(None)
        elif op.startswith("POP_JUMP"):  # pops its test, and leaves the rest known
            pop(1)
        elif op.startswith("JUMP") and not op.endswith("_OR_POP"):
            pass  # (the generic rule below would forget the top)
        elif op == "COPY" and arg:
            stack.append(top(arg))
        elif op == "SWAP" and arg:
            while len(stack) < arg:
                stack.insert(0, None)
                whole = False
            stack[-1], stack[-arg] = stack[-arg], stack[-1]
        elif op not in _NEUTRAL:
            try:
                effect = dis.stack_effect(ins.opcode, arg, jump=False)
            except ValueError:
                try:
                    effect = dis.stack_effect(ins.opcode, None, jump=False)
                except ValueError:
                    stack, whole = [], False
                    continue
            # Unknown instruction: it may consume and replace the top, so
            # what remains visible there is no longer known.
            if effect < 0:
                pop(-effect)
            if stack:
                stack[-1] = None
            stack += [None] * max(0, effect)
    return accesses


# -- peeking values without running code ------------------------------------------------


def peek_attr(obj: Any, name: str) -> Any:
    """``obj.name`` without running user code: the instance's ``__dict__``,
    slots, class attributes; ``MISSING`` if it would take a call (a
    property, ``__getattr__``), or a property object itself for properties."""
    cls_attr = MISSING
    for klass in type(obj).__mro__:
        if name in klass.__dict__:
            cls_attr = klass.__dict__[name]
            break
    if cls_attr is not MISSING:
        if isinstance(cls_attr, property):
            return cls_attr
        if isinstance(cls_attr, types.MemberDescriptorType) or cls_attr is _COUNTER_VALUE:
            try:  # __slots__, or the C counter's value: a read of a field, no code run
                return cls_attr.__get__(obj, type(obj))
            except AttributeError:
                return MISSING
        if hasattr(type(cls_attr), "__set__"):
            return MISSING  # some other data descriptor: only a call would tell
    try:
        instance_dict = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        instance_dict = None
    if isinstance(instance_dict, dict) and name in instance_dict:
        return instance_dict[name]
    if isinstance(obj, type):
        for klass in obj.__mro__:
            if name in klass.__dict__:
                return klass.__dict__[name]
    return cls_attr


def evaluate(expr: Expr, frame: types.FrameType) -> Any:
    """The value of ``expr`` in ``frame`` now, peeked; ``MISSING`` if unknown."""
    if expr is None or expr[0] in _OPAQUE_KINDS:
        return MISSING
    kind = expr[0]
    if kind == "const":
        return expr[1]
    if kind in ("fast", "deref"):
        return frame.f_locals.get(expr[1], MISSING)
    if kind == "global":
        value = frame.f_globals.get(expr[1], MISSING)
        if value is MISSING:
            value = frame.f_builtins.get(expr[1], MISSING)
        return value
    obj = evaluate(expr[1], frame)
    if obj is MISSING:
        return MISSING
    if kind == "subscr":  # a plain container's item only: __getitem__ may be anyone's
        key = evaluate(expr[2], frame)
        if key is MISSING or type(obj) not in (list, dict, tuple):
            return MISSING
        try:
            return obj[key]
        except (LookupError, TypeError):
            return MISSING
    value = peek_attr(obj, expr[2])
    return MISSING if isinstance(value, property) else value


def locate(access: Access, frame: types.FrameType, names: Names) -> tuple[Any, str, str]:
    """(object, display name, location) of an access in ``frame``: the
    object is None for variables, ``(container, key)`` for subscripts and
    ``MISSING`` when it cannot be known without running code."""
    if access.what == "global":
        return None, access.name, f"global {access.name}"
    if access.what == "deref":
        return None, access.name, f"nonlocal {access.name}"
    obj = evaluate(access.obj, frame)
    if obj is MISSING:
        return MISSING, "", ""
    if access.what != "subscr":
        display = f"{names.of(obj)}.{access.name}"
        return obj, display, display
    key = evaluate(access.key, frame)
    if key is MISSING or not isinstance(key, (int, str, bytes, tuple, float)):
        return MISSING, "", ""
    display = f"{names.of(obj)}[{key!r}]"
    return (obj, key), display, display


def peek_read(access: Access, frame: types.FrameType, obj: Any) -> Any:
    """The value a read is about to get (``obj`` from :func:`locate`):
    ``MISSING`` if unknown, a property object if it takes the getter.
    For ``key in container`` (or ``not in``): whether the key is there,
    True or False (the item's presence, whichever the test), for a plain
    dict only -- anything else may run its own ``__contains__``,
    and membership in a list or set is no place of its own."""
    if access.what == "subscr":
        container, key = obj
        if access.op in ("in", "not in"):
            if type(container) is not dict:
                return MISSING
            try:
                return key in container
            except TypeError:  # unhashable: the instruction will raise
                return MISSING
        if type(container) not in (list, dict, tuple):
            return MISSING  # __getitem__ may be anyone's code
        try:
            return container[key]
        except (LookupError, TypeError):
            return MISSING
    if access.what == "attr":
        return peek_attr(obj, access.name)
    return evaluate((access.what, access.name), frame)


def peek_written(access: Access, frame: types.FrameType, obj: Any) -> Any:
    """The value a write stored, once it ran: ``MISSING`` if unknown (a
    property, a container other than a list or dict). Not for a ``del``:
    that is recorded as it is tried (:func:`deleted_before`)."""
    if access.what == "attr":
        value = peek_attr(obj, access.name)
        return MISSING if isinstance(value, property) else value
    if access.what == "subscr":
        container, key = obj
        return container[key] if type(container) in (list, dict) else MISSING
    return evaluate((access.what, access.name), frame)


class _Deleted:
    """What a ``del`` leaves: shown as ``<deleted>``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<deleted>"


#: The value of a location after a ``del``.
DELETED: Any = _Deleted()


def deleted_before(access: Access, frame: types.FrameType, obj: Any) -> Any:
    """For a ``del`` about to run (``obj`` from :func:`locate`):
    :data:`DELETED` if it may be shown -- a plain dict or list item, an
    attribute without a property or other descriptor in the way, a
    variable -- else ``MISSING``. Whether it will succeed is not asked: a
    ``del`` of what another task deleted first fails, and that attempt is
    the access that explains the failure."""
    if access.op != "del":
        return MISSING
    if access.what == "subscr":
        container, _ = obj
        return DELETED if type(container) in (dict, list) else MISSING
    if access.what == "attr":
        for klass in type(obj).__mro__:
            if access.name in klass.__dict__:
                if hasattr(type(klass.__dict__[access.name]), "__delete__"):
                    return MISSING  # a property's deleter, slots: code of their own
                break
        return DELETED
    return DELETED


def property_code(value: Any, kind: str) -> types.CodeType | None:
    """The code that gives a property's value: the getter's for a read, the
    setter's for a write; None if ``value`` is no property or has none."""
    if not isinstance(value, property):
        return None
    function = value.fget if kind == "read" else value.fset
    code = getattr(function, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


# -- showing values -----------------------------------------------------------------------

#: Values of these modules' types are machinery, not shared data: a read of
#: a global holding a lock is noise in a trace.
_MACHINERY_MODULES = ("threading", "queue", "_thread", "asyncio", "critsec")


def is_data(value: Any) -> bool:
    """True for a value worth a row of its own in a trace: not code, not a
    module, not a reference to an object without a repr, not machinery."""
    if callable(value) or isinstance(value, types.ModuleType) or _has_plain_repr(value):
        return False
    module = type(value).__module__
    return not module.startswith(_MACHINERY_MODULES)


_OBJECT_REPR: Any = object.__repr__


def _has_plain_repr(value: Any) -> bool:
    return type(value).__repr__ is _OBJECT_REPR


class Names:
    """Names for objects, stable within a schedule: ``Counter`` for the first
    instance of a type seen, ``Counter#2`` for the next; an object can be
    named after the place it was first read from instead."""

    def __init__(self) -> None:
        self.names: dict[int, tuple[Any, str]] = {}  # id -> (object kept alive, name)
        self.per_type: dict[str, int] = {}

    def of(self, obj: Any) -> str:
        known = self.names.get(id(obj))
        if known is not None:
            return known[1]
        if isinstance(obj, types.ModuleType):
            return obj.__name__
        kind = type(obj).__name__
        count = self.per_type.get(kind, 0) + 1
        self.per_type[kind] = count
        name = kind if count == 1 else f"{kind}#{count}"
        self.names[id(obj)] = (obj, name)
        return name

    def remember(self, obj: Any, name: str) -> None:
        """A container read from a named place (``items``) is named after it."""
        if isinstance(obj, (list, dict, set, bytearray)):
            self.adopt(obj, name)

    def adopt(self, obj: Any, name: str) -> None:
        """Name ``obj`` ``name``, unless it already has a name."""
        if id(obj) not in self.names:
            self.names[id(obj)] = (obj, name)


_ADDRESS = re.compile(r" (?:at|object at) 0x[0-9a-fA-F]+")


def describe_object(value: Any) -> str:
    """``repr(value)`` without memory addresses, so that a trace is the same
    text on every run (replay promises the same trace)."""
    return _ADDRESS.sub("", repr(value))


def short(value: Any, width: int = 60) -> str:
    """:func:`describe_object`, cut to ``width`` characters."""
    text = describe_object(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class ShortRepr(reprlib.Repr):
    """``reprlib`` with objects of the default ``<X object at 0x...>`` repr
    shown by their schedule-stable name, and no addresses in the others."""

    def __init__(self, names: Names) -> None:
        super().__init__()
        self.names = names
        self.maxstring = self.maxother = 40

    def repr_instance(self, x: Any, level: int) -> str:
        if _has_plain_repr(x):
            return self.names.of(x)
        try:
            text = describe_object(x)
        except Exception:  # reprlib would show the address instead
            return f"<{type(x).__name__} instance>"
        if len(text) > self.maxother:
            head = max(0, (self.maxother - 3) // 2)
            tail = max(0, self.maxother - 3 - head)
            text = text[:head] + "..." + text[len(text) - tail :]
        return text
