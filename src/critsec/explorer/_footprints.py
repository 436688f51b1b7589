"""What a thread task's step may touch, for partial-order reduction.

A step of the threads driver runs one instruction that another task could
observe -- the switch point it starts at -- and then only instructions
that touch the frame's own stack and locals, up to the next switch point
(see ``_points.LOCAL_ONLY``). So what a step may touch is what that one
instruction may touch. :func:`footprint` says it from the instruction and
its operands, peeked in the live frame without running code, and says
``None`` -- *opaque*, it may touch anything -- whenever it cannot be sure.
A wrong "touches only this" would let ``dfs`` skip an order that matters
and call a buggy program proven; a needless "opaque" only costs schedules.
So:

* a global is one place per name (``("global", name)``; globals of two
  modules with one name share it), a closure variable one per name too;
* an attribute is a place of its own, a *part* of its object's place
  (``("obj", id, name)``; see ``_dpor.whole``): ``obj.x``,
  ``obj.__dict__["x"]`` and ``vars(obj)["x"]`` are all the same memory, so
  an object's place is its ``__dict__``'s, and its item ``"x"`` the
  attribute. A read of an instance's attribute also reads that name of
  its classes (it may come from them). Only objects whose attribute
  access runs no code but Python's own: a plain
  ``__getattribute__``/``__setattr__``, no descriptor but a slot or a
  function -- or a property whose code is the user's (it runs with switch
  points of its own) or critsec's (which touches only its object): a
  property is the whole object, its code may touch any attribute. Dunder
  attributes (``__dict__``, ``__class__``) are opaque;
* items of exact ``list``, ``dict`` and ``set`` objects: a dict's item by
  a plain key (``str``, ``int``, ``bytes``, ``None``; ``key in d`` too)
  and a list's by an index in range (from either end) are parts; the rest
  -- ``x in list``, a list's ``del`` (the items after it move), a slice, a
  method, iteration -- the whole container (immutable containers are no
  place at all); any other container is opaque;
* a plain store's footprint also says, once it ran, what object it
  stored (``Footprint.values``): two stores of the very same object in
  one place commute;
* a controlled ``Lock``/``RLock`` is one place, written by ``with`` (both
  ends) and by its methods; a ``Condition`` writes its lock and itself;
  an object of ``threading``, ``queue`` or critsec's runtimes (an
  ``Event``, a ``Queue``) writes itself and the locks it keeps; a ``with``
  on anything else is opaque;
* a call of the user's function or method touches nothing itself (its own
  steps say what they do), ``range`` nothing, a builtin that only reads
  its arguments (``len``, ``sorted``) reads anything;
* operators, comparisons, iteration, unpacking, formatting read anything
  (they may run C code that reads a container) and write nothing -- except
  an in-place operator (``lst += ...`` mutates a list), which is opaque;
* a call is opaque (C code and libraries may do anything), and so is
  every instruction not named here.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Hashable
from typing import Any

from . import _patches
from ._access import MISSING, Access, evaluate, peek_attr
from ._usercode import is_sync_api

__all__ = ["Touched", "footprint", "stored_place", "sync_places"]

#: (places read, places written, reads anything); None: opaque.
Touched = tuple[frozenset[Hashable], frozenset[Hashable], bool] | None

_NOTHING: Touched = (frozenset(), frozenset(), False)
_READS_ANYTHING: Touched = (frozenset(), frozenset(), True)

#: Instructions that only read (their operands, and what C code reading
#: them reads), never write, and call no library code that could.
_READ_ONLY = frozenset(
    {
        "BINARY_OP", "COMPARE_OP", "CONTAINS_OP", "GET_ITER", "FOR_ITER", "END_FOR",
        "UNARY_NEGATIVE", "UNARY_NOT", "UNARY_INVERT", "TO_BOOL",
        "POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE", "POP_JUMP_FORWARD_IF_TRUE",
        "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_FALSE",
        "JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP",
        "FORMAT_VALUE", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC", "CONVERT_VALUE", "BUILD_STRING",
        "BUILD_LIST", "BUILD_SET", "BUILD_MAP", "BUILD_CONST_KEY_MAP", "BUILD_SLICE",
        "LIST_APPEND", "SET_ADD", "MAP_ADD", "LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE",
        "DICT_MERGE", "LIST_TO_TUPLE", "UNPACK_SEQUENCE", "UNPACK_EX", "GET_LEN",
        "BINARY_SLICE", "POP_ITER", "END_SEND",
    }
)  # fmt: skip
#: Instructions that touch nothing shared (they make a function, a cell).
_NONE_SHARED = frozenset(
    {"LOAD_CLOSURE", "MAKE_FUNCTION", "SET_FUNCTION_ATTRIBUTE", "NOP", "LOAD_LOCALS"}
)
_IMMUTABLE = (tuple, str, bytes, frozenset, range, int, float, complex, bool, type(None))
_CONTAINERS = (list, dict, set)


#: Builtins that only read their arguments (and make new objects).
_READING_BUILTINS = frozenset(
    {
        abs, all, any, ascii, bin, bool, bytes, callable, chr, complex, dict, divmod,
        enumerate, float, format, frozenset, hash, hex, id, int, isinstance, issubclass,
        len, list, max, min, oct, ord, pow, repr, reversed, round, set, sorted, str,
        sum, tuple, type, zip,
    }
)  # fmt: skip
_LOCK_METHODS = frozenset({"acquire", "release", "locked", "__enter__", "__exit__"})
#: A ``range`` (an iterator over one): a fresh object no one else has.
_RANGE = object()
#: A value known only as private: an operator's result on scalars (a
#: scalar), a tuple of such values, what a builtin that makes a new object
#: returned (``sorted(...)``): no other task can reach it.
_PRIVATE = object()
#: Builtins whose result is a new object (or a scalar).
_FRESH_RESULTS = frozenset(
    {abs, bool, bytes, chr, complex, dict, divmod, float, format, frozenset, hash, hex, id,
     int, len, list, max, min, oct, ord, pow, range, repr, round, set, sorted, str, sum, tuple}
)  # fmt: skip
_SCALARS = (int, float, complex, bool, str, bytes, type(None))

Memo = dict[tuple[int, Any], Any]


def footprint(
    frame: types.FrameType,
    opname: str,
    argrepr: str,
    access: Access | None,
    operands: tuple[Any, ...] | None,
    memo: Memo,
    users: Callable[[types.CodeType], bool],
) -> Touched:
    """What the instruction ``opname`` about to run in ``frame`` may touch.
    ``access``: what :func:`~._access.analyse` found it reads or writes;
    ``operands``: what it works on (``analyse``'s ``operands``); ``memo``:
    this task's notes of what its earlier steps loaded, called, iterated
    (the value stack cannot be peeked, so a value is known from the step
    that loaded it: a load runs in the step it starts); ``users``: whether
    code is the user's. Never raises; None when unsure."""
    try:
        if access is not None:
            return _accessing(frame, access, memo, users)
        if opname in _NONE_SHARED:
            return _NOTHING
        if opname in ("CALL", "PRECALL") and operands:
            return _call(frame, operands[0], operands[1:], memo, users)
        if opname == "GET_ITER" and operands:
            return _get_iter(frame, operands[0], memo)
        if opname == "FOR_ITER" and operands:
            return _for_iter(frame, operands[0], memo, users)
        if opname == "BINARY_OP" and operands:
            return _binary(frame, operands, argrepr, memo)
        if opname == "UNPACK_SEQUENCE" and operands:
            private = _private(_known(frame, operands[0], memo))
            return _NOTHING if private else _READS_ANYTHING
        if opname in _READ_ONLY:
            return _READS_ANYTHING
        return None
    except Exception:  # peeking went wrong: say nothing
        return None


def _known(frame: types.FrameType, expr: Any, memo: Memo) -> Any:
    """The value ``expr`` has on the stack now: a constant, a local (only
    this task changes them), or what this task's step that loaded it saw;
    ``MISSING`` if unknown."""
    if expr is None:
        return MISSING
    kind = expr[0]
    if kind in ("const", "fast"):
        return evaluate(expr, frame)
    if kind in ("binop", "tuple"):
        parts = [_known(frame, e, memo) for e in expr[1:]]
        return _PRIVATE if all(_private(v) for v in parts) else MISSING
    if kind == "call":
        made = memo.get((id(frame), expr), MISSING)
        return _PRIVATE if made in _FRESH_RESULTS else MISSING
    return memo.get((id(frame), expr), MISSING)


def _private(value: Any) -> bool:
    """Whether no other task can see ``value`` change: a scalar, an
    immutable container of such (shallowly: a tuple's items are checked by
    ``_known``), or a value known private."""
    if value is _PRIVATE or value is _RANGE:
        return True
    return value is not MISSING and type(value) in _SCALARS


def _call(
    frame: types.FrameType,
    callee: Any,
    arguments: tuple[Any, ...],
    memo: Memo,
    users: Callable[[types.CodeType], bool],
) -> Touched:
    if callee is not None and callee[0] == "exit":  # a with statement's end
        places = sync_places(memo.get((id(frame), callee), MISSING))
        return None if places is None else (frozenset(), places, False)
    if callee is not None and callee[0] == "method":
        return _method_call(frame, callee, memo, users)
    memo.pop((id(frame), ("call", callee)), None)  # see _accessing
    function = _known(frame, callee, memo)
    if function is MISSING:
        return None
    memo[id(frame), ("call", callee)] = function
    if function is range:
        return _NOTHING
    if isinstance(function, types.MethodType):
        places = sync_places(function.__self__)
        if places is not None and not function.__name__.startswith("_"):
            return (frozenset(), places, False)
        function = function.__func__
    if isinstance(function, types.FunctionType) and users(function.__code__):
        return _NOTHING  # its own steps say what it touches
    if function in _READING_BUILTINS:
        private = all(_private(_known(frame, a, memo)) for a in arguments)
        return _NOTHING if private else _READS_ANYTHING
    return None


def _method_call(
    frame: types.FrameType, callee: Any, memo: Memo, users: Callable[[types.CodeType], bool]
) -> Touched:
    """``obj.name(...)``: a synchronisation object's operation, or a method
    of the user's; anything else may touch anything."""
    _, of, name = callee
    target = _known(frame, of, memo)
    if target is MISSING:
        return None
    places = sync_places(target)
    if places is not None and (not name.startswith("_") or name in _LOCK_METHODS):
        return (frozenset(), places, False)
    if type(target) in _CONTAINERS:
        return _container_method(target, name)
    if isinstance(target, types.ModuleType):
        return None
    for klass in type(target).__mro__:
        if name in klass.__dict__:
            found = klass.__dict__[name]
            if isinstance(found, types.FunctionType) and users(found.__code__):
                return _NOTHING  # its own steps say what it touches
            return None
    return None


#: Methods of lists, dicts and sets: those that change the container, and
#: of all, those that read no other object than it (the rest may compare
#: or copy their arguments' contents: they read anything).
_MUTATORS = frozenset(
    {
        "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
        "popitem", "setdefault", "update", "add", "discard", "difference_update",
        "intersection_update", "symmetric_difference_update",
    }
)  # fmt: skip
_SELF_ONLY = frozenset(
    {"append", "insert", "pop", "clear", "popitem", "add", "discard", "get", "setdefault",
     "copy", "keys", "values", "items", "reverse"}
)  # fmt: skip


def _container_method(container: Any, name: str) -> Touched:
    if name.startswith("_") or not hasattr(type(container), name):
        return None
    place = frozenset({("obj", id(container))})
    reads_all = name not in _SELF_ONLY
    if name in _MUTATORS:
        return (frozenset(), place, reads_all)
    return (place, frozenset(), reads_all)


def _get_iter(frame: types.FrameType, iterable: Any, memo: Memo) -> Touched:
    if iterable is not None and iterable[0] == "call":
        made = memo.get((id(frame), iterable), MISSING)
        source = _RANGE if made is range else MISSING
    else:
        source = _known(frame, iterable, memo)
    if source is MISSING:
        memo.pop((id(frame), ("iter", iterable)), None)  # see _accessing
        return _READS_ANYTHING
    memo[id(frame), ("iter", iterable)] = source
    return (
        _NOTHING
        if source is _RANGE or type(source) in _CONTAINERS + _IMMUTABLE
        else (_READS_ANYTHING)
    )


def _for_iter(
    frame: types.FrameType, iterator: Any, memo: Memo, users: Callable[[types.CodeType], bool]
) -> Touched:
    source = memo.get((id(frame), iterator), MISSING)
    if source is _RANGE or (source is not MISSING and type(source) in _IMMUTABLE):
        return _NOTHING
    if source is not MISSING and type(source) in _CONTAINERS:
        return _one(("obj", id(source)), False)
    if isinstance(source, types.GeneratorType):
        return _NOTHING if users(source.gi_code) else None
    return _READS_ANYTHING


def _binary(frame: types.FrameType, operands: tuple[Any, ...], argrepr: str, memo: Memo) -> Touched:
    left, right = (_known(frame, e, memo) for e in operands)
    in_place = argrepr.endswith("=") and argrepr not in ("==", "!=", "<=", ">=")
    if _private(left) and _private(right):
        return _NOTHING  # no one's code, nothing shared: a new value
    if not in_place:
        return _READS_ANYTHING
    if left is not MISSING and type(left) in _CONTAINERS:
        return (frozenset(), frozenset({("obj", id(left))}), True)
    return None  # `x += y` on an object: its __iadd__, anyone's


#: Where the classes built on controlled locks live, whose methods touch
#: only their object and the locks in it (Semaphore, Event, Queue, ...).
_SYNC_MODULES = ("threading", "queue", "critsec.runtimes")
_LOCKS = (_patches.Lock, _patches.RLock)


def sync_places(obj: Any) -> frozenset[Hashable] | None:
    """The places a synchronisation object's operations touch: a
    controlled lock; a condition's lock and the condition; a
    ``threading``/``queue``/critsec object and the controlled locks (and
    conditions' locks) it keeps. None for anything else."""
    if type(obj) in _LOCKS:
        return frozenset({("obj", id(obj))})
    if isinstance(obj, _patches.Condition):
        lock = getattr(obj, "_lock", None)
        if type(lock) not in _LOCKS:
            return None
        return frozenset({("obj", id(lock)), _place(obj)})
    if isinstance(obj, _patches.SimpleQueue) or type(obj).__module__.startswith(_SYNC_MODULES):
        places: set[Hashable] = {_place(obj)}
        for value in _fields(obj).values():
            if type(value) in _LOCKS or isinstance(value, _patches.Condition):
                places |= sync_places(value) or set()
        return frozenset(places)
    return None


def _accessing(
    frame: types.FrameType, access: Access, memo: Memo, users: Callable[[types.CodeType], bool]
) -> Touched:
    what, writes = access.what, access.kind == "write"
    # The note this load leaves of what it loads: forget one a dead frame
    # with the same id left, in case this load cannot say.
    note = _note(frame, access)
    if note is not None:
        memo.pop(note, None)
    if what in ("global", "deref"):
        if note is not None:  # what the load about to run gets
            memo[note] = evaluate((what, access.name), frame)
        return _one((what, access.name), writes)
    # What the instruction works on was loaded by an earlier step, maybe
    # before another task changed where it came from: what that step saw.
    obj = _known(frame, access.obj, memo)
    if obj is MISSING:
        return None
    if what == "with":
        if note is not None:  # (always, for a with)
            memo[note] = obj
        places = sync_places(obj)
        return None if places is None else (frozenset(), places, False)
    if what == "subscr":  # (``key in obj`` too)
        if type(obj) not in _IMMUTABLE and type(obj) not in _CONTAINERS:
            return None
        key = _known(frame, access.key, memo)
        if note is not None and type(key) in _KEYS and type(obj) is not set:
            try:  # what the load about to run gets
                memo[note] = obj[key]
            except Exception:
                pass
        return _NOTHING if type(obj) in _IMMUTABLE else _one(_item(obj, key, access.op), writes)
    touched = _attribute(obj, access.name, writes, users)
    if touched is not None and note is not None:
        value = peek_attr(obj, access.name)
        if value is not MISSING and not isinstance(value, property):
            memo[note] = value
    return touched


def _note(frame: types.FrameType, access: Access) -> tuple[int, Any] | None:
    """Where a load notes in ``memo`` what it loads, as :func:`_known`
    looks it up (a ``with``: its object, for the exit); None for a store."""
    what = access.what
    if what == "with":
        return id(frame), ("exit", access.obj)
    if access.kind == "write" or access.op:
        return None
    if what in ("global", "deref"):
        return id(frame), (what, access.name)
    return id(frame), (what, access.obj, access.key if what == "subscr" else access.name)


#: Keys that name one item of a dict (or list): compared as Python's dict
#: compares them (``1``, ``1.0`` and ``True`` are one key), running no code.
_KEYS = (str, int, bool, bytes, type(None))


def _item(container: Any, key: Any, op: str) -> tuple[Any, ...]:
    """The place of ``container[key]``: that item alone (a part of the
    container, see ``_dpor.whole``) for a dict's key or a list's index in
    range; the whole container for ``x in list`` (it reads every item),
    a ``del`` of a list's item (the rest move), a slice, any other key."""
    place: tuple[Any, ...] = ("obj", id(container))
    if key is MISSING or type(key) not in _KEYS:
        return place
    if type(container) is dict:
        return (*place, key)
    if type(container) is list and not op and type(key) is int:
        index = key + len(container) if key < 0 else key
        if 0 <= index < len(container):
            return (*place, index)
    return place


def _attribute(
    obj: Any, name: str, writes: bool, users: Callable[[types.CodeType], bool]
) -> Touched:
    if name.startswith("__") and name.endswith("__"):
        return None
    if isinstance(obj, types.ModuleType):
        # A module's attributes are its globals, which its own code reaches
        # by name (STORE_GLOBAL): the same place.
        return _one(("global", name), writes)
    cls = type(obj)
    if isinstance(obj, type):
        if cls is not type:
            return None  # a metaclass's access may be anyone's code
    elif _overrides(cls, "__getattribute__") or (writes and _overrides(cls, "__setattr__")):
        return None
    found_anywhere = is_property = False
    for klass in cls.__mro__:
        if name in klass.__dict__:
            found = klass.__dict__[name]
            if isinstance(found, property):
                is_property = True
                accessor = found.fset if writes else found.fget
                code = getattr(accessor, "__code__", None)
                if code is None or not (users(code) or is_sync_api(code)):
                    return None  # (critsec's keep their state on their object)
            elif isinstance(found, (types.FunctionType, types.MemberDescriptorType, *_C_METHODS)):
                pass  # a method, a slot: no code of anyone's
            elif hasattr(type(found), "__get__") and not isinstance(found, _IMMUTABLE):
                return None  # a descriptor: its code, whoever wrote it
            found_anywhere = True
            break
    missing = not found_anywhere and name not in _fields(obj)
    if missing and not writes and hasattr(cls, "__getattr__"):
        return None  # __getattr__ may run, anyone's code
    # The attribute alone, a part of its object (``obj.x`` and
    # ``obj.__dict__["x"]`` are one place); a property's getter or setter
    # may touch any attribute of the object, so it is the whole object.
    place = _place(obj)
    own = place if is_property else (*place, name)
    if writes:
        return (frozenset(), frozenset({own}), False)
    # An instance's attribute may be its class's (a class's, its bases').
    classes = obj.__mro__ if isinstance(obj, type) else cls.__mro__
    read: set[Hashable] = {("obj", id(k), name) for k in classes}
    if not (found_anywhere and isinstance(found, _C_METHODS) and place == ("obj", id(obj))):
        read.add(own)  # (a C method of an object with no __dict__: only its class is read)
    return (frozenset(read), frozenset(), False)


#: Methods written in C, as their classes hold them: looking one up runs no code.
_C_METHODS = (
    types.MethodDescriptorType,
    types.BuiltinFunctionType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
)

#: C classes whose attribute access is Python's generic one all the same.
_GENERIC = (object, types.SimpleNamespace, list, dict, set, frozenset, tuple)


def _overrides(cls: type, name: str) -> bool:
    """Whether a class of ``cls``'s MRO other than those defines ``name``."""
    return any(name in klass.__dict__ for klass in cls.__mro__ if klass not in _GENERIC)


def _fields(obj: Any) -> dict[str, Any]:
    try:
        fields = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return {}
    return fields if isinstance(fields, dict) else {}


def _place(obj: Any) -> tuple[str, int]:
    """An object's one place: its ``__dict__`` if it has one (reached as
    ``obj.__dict__`` too), else the object (slots)."""
    if isinstance(obj, type):
        return ("obj", id(obj))
    try:
        fields = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return ("obj", id(obj))
    return ("obj", id(fields))


def _one(place: Hashable, writes: bool) -> Touched:
    places = frozenset({place})
    return (frozenset(), places, False) if writes else (places, frozenset(), False)


def stored_place(access: Access, obj: Any) -> Hashable | None:
    """The one place a plain store writes -- a variable, an attribute, an
    item (``obj`` as :func:`~._access.locate` gives it) -- as its footprint
    names it; None if that is not one such place. What it stored is then
    known to be all it changed (``_dpor.Footprint.values``)."""
    if access.op:
        return None
    if access.what in ("global", "deref"):
        return (access.what, access.name)
    if access.what == "attr":
        return (*_place(obj), access.name)
    if access.what == "subscr":
        container, key = obj
        place = _item(container, key, "")
        return place if len(place) == 3 else None
    return None
