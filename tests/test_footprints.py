"""What a step may touch, asked directly (``critsec.explorer._footprints``):
the same rules the reduction's end-to-end tests rely on, called here on a
live frame of this test rather than inside the explorer's trace callbacks
(where no tracer, coverage's included, can see them run)."""

from __future__ import annotations

import queue
import sys
import threading
import types
from typing import Any

from critsec.explorer import _footprints, _patches
from critsec.explorer._access import Access
from critsec.explorer._footprints import footprint

NOTHING: Any = (frozenset(), frozenset(), False)
ANYTHING_READ: Any = (frozenset(), frozenset(), True)
shared_global = 1


def users(code: types.CodeType) -> bool:
    return code.co_filename == __file__


class Plain:
    level = 0

    def __init__(self) -> None:
        self.x = 0

    def method(self) -> None:
        pass

    @property
    def prop(self) -> int:
        return self.x


class Guarded:
    def __getattribute__(self, name: str) -> Any:
        return object.__getattribute__(self, name)


class Lazy:
    def __getattr__(self, name: str) -> Any:
        return 0


def place(obj: Any) -> tuple[str, int]:
    return ("obj", id(vars(obj)) if hasattr(obj, "__dict__") else id(obj))


def touched(
    opname: str,
    access: Access | None = None,
    operands: Any = None,
    memo: Any = None,
    argrepr: str = "",
) -> Any:
    return footprint(
        sys._getframe(1), opname, argrepr, access, operands, {} if memo is None else memo, users
    )


def test_globals_and_closure_variables_are_places_by_name() -> None:
    memo: dict[Any, Any] = {}
    read = touched("LOAD_GLOBAL", Access("read", "global", "shared_global"), memo=memo)
    assert read == (frozenset({("global", "shared_global")}), frozenset(), False)
    assert memo[id(sys._getframe()), ("global", "shared_global")] == 1  # what the load gets
    write = touched("STORE_DEREF", Access("write", "deref", "x"))
    assert write == (frozenset(), frozenset({("deref", "x")}), False)


def test_an_object_is_one_place_and_its_classes_are_read_too() -> None:
    p = Plain()
    read = touched("LOAD_ATTR", Access("read", "attr", "x", ("fast", "p")))
    assert read[0] == {place(p), ("obj", id(Plain)), ("obj", id(object))} and not read[1]
    assert touched("STORE_ATTR", Access("write", "attr", "x", ("fast", "p"))) == (
        frozenset(),
        {place(p)},
        False,
    )
    assert (
        touched("LOAD_ATTR", Access("read", "attr", "prop", ("fast", "p"))) is not None
    )  # the user's
    assert touched("LOAD_ATTR", Access("read", "attr", "__dict__", ("fast", "p"))) is None
    klass = Plain
    assert touched("STORE_ATTR", Access("write", "attr", "level", ("fast", "klass")))[1] == {
        ("obj", id(klass))
    }
    module = sys.modules[__name__]
    assert touched("LOAD_ATTR", Access("read", "attr", "shared_global", ("fast", "module")))[0] == {
        ("global", "shared_global")
    }
    assert module is not None


def test_attribute_access_that_may_run_anyones_code_is_opaque() -> None:
    guarded, lazy, event = Guarded(), Lazy(), threading.Event()
    assert touched("LOAD_ATTR", Access("read", "attr", "x", ("fast", "guarded"))) is None
    assert touched("LOAD_ATTR", Access("read", "attr", "missing", ("fast", "lazy"))) is None
    assert touched("LOAD_ATTR", Access("read", "attr", "x", ("fast", "unknown"))) is None
    # A classmethod is a descriptor: its code runs.
    assert touched("LOAD_ATTR", Access("read", "attr", "fromkeys", ("fast", "event"))) is not None
    assert None not in (guarded, lazy, event)  # (read through the frame, by name)


def test_items_of_plain_containers_and_immutable_ones() -> None:
    items, row = [1, 2], (1, 2)
    assert touched(
        "STORE_SUBSCR", Access("write", "subscr", "", ("fast", "items"), ("const", 0))
    ) == (
        frozenset(),
        {("obj", id(items))},
        False,
    )
    assert (
        touched("BINARY_SUBSCR", Access("read", "subscr", "", ("fast", "row"), ("const", 0)))
        == NOTHING
    )
    deque_ = __import__("collections").deque()
    assert (
        touched("BINARY_SUBSCR", Access("read", "subscr", "", ("fast", "deque_"), ("const", 0)))
        is None
    )
    assert None not in (row, deque_)


def test_operators_iteration_and_calls() -> None:
    n, items = 3, [1]
    fid = id(sys._getframe())
    assert touched("BINARY_OP", operands=(("fast", "n"), ("const", 1)), argrepr="+") == NOTHING
    in_place = touched("BINARY_OP", operands=(("fast", "items"), None), argrepr="+=")
    assert in_place == (frozenset(), {("obj", id(items))}, True)
    assert touched("BINARY_OP", operands=(None, None), argrepr="+=") is None
    assert touched("BINARY_OP", operands=(None, None), argrepr="+") == ANYTHING_READ
    assert touched("COMPARE_OP") == ANYTHING_READ
    assert touched("CALL_FUNCTION_EX") is None
    assert touched("MAKE_FUNCTION") == NOTHING
    memo: dict[Any, Any] = {(fid, ("global", "range")): range, (fid, ("global", "len")): len}
    assert touched("CALL", operands=(("global", "range"), ("fast", "n")), memo=memo) == NOTHING
    assert touched("CALL", operands=(("global", "len"), ("fast", "n")), memo=memo) == NOTHING
    assert (
        touched("CALL", operands=(("global", "len"), ("fast", "items")), memo=memo) == ANYTHING_READ
    )
    iterable = ("call", ("global", "range"))
    assert touched("GET_ITER", operands=(iterable,), memo=memo) == NOTHING
    assert touched("FOR_ITER", operands=(("iter", iterable),), memo=memo) == NOTHING
    assert touched("GET_ITER", operands=(("fast", "items"),), memo=memo) == NOTHING
    assert touched("FOR_ITER", operands=(("iter", ("fast", "items")),), memo=memo) == (
        frozenset({("obj", id(items))}),
        frozenset(),
        False,
    )
    assert touched("FOR_ITER", operands=(("iter", None),), memo=memo) == ANYTHING_READ
    pair = ("tuple", ("fast", "n"), ("binop", ("fast", "n"), ("const", 1)))
    assert touched("UNPACK_SEQUENCE", operands=(pair,), memo=memo) == NOTHING
    assert touched("UNPACK_SEQUENCE", operands=(None,), memo=memo) == ANYTHING_READ
    assert n == 3


def test_methods_of_locks_containers_and_the_users() -> None:
    lock = object.__new__(_patches.Lock)  # (no schedule: the class itself)
    p, items = Plain(), [1]
    q: queue.Queue[int] = queue.Queue()
    assert touched("CALL", operands=(("method", ("fast", "lock"), "acquire"),)) == (
        frozenset(),
        {("obj", id(lock))},
        False,
    )
    assert touched("CALL", operands=(("method", ("fast", "items"), "append"), None)) == (
        frozenset(),
        {("obj", id(items))},
        False,
    )
    assert touched("CALL", operands=(("method", ("fast", "items"), "index"), None)) == (
        {("obj", id(items))},
        frozenset(),
        True,
    )
    assert touched("CALL", operands=(("method", ("fast", "p"), "method"),)) == NOTHING
    assert touched("CALL", operands=(("method", ("fast", "q"), "put"), None)) == (
        frozenset(),
        {place(q)},
        False,
    )
    assert touched("CALL", operands=(("method", ("fast", "sys"), "exit"),)) is None
    assert touched("CALL", operands=(("method", ("fast", "nothing_here"), "x"),)) is None
    assert p is not None


def test_with_and_its_exit_on_a_controlled_lock() -> None:
    lock = object.__new__(_patches.Lock)  # (no schedule: the class itself)
    memo: dict[Any, Any] = {}
    entering = touched("BEFORE_WITH", Access("use", "with", "", ("fast", "lock")), memo=memo)
    assert entering == (frozenset(), {("obj", id(lock))}, False)
    exit_ = ("exit", ("fast", "lock"))
    assert touched("CALL", operands=(exit_,), memo=memo) == entering
    other = open(__file__)  # noqa: SIM115 - a context manager of the library's
    try:
        assert touched("BEFORE_WITH", Access("use", "with", "", ("fast", "other"))) is None
    finally:
        other.close()
    assert _footprints.sync_places(object()) is None
