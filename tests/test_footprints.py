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


def test_an_attribute_is_a_part_of_its_object_and_its_classes_are_read_too() -> None:
    p = Plain()
    read = touched("LOAD_ATTR", Access("read", "attr", "x", ("fast", "p")))
    assert read[0] == {(*place(p), "x"), ("obj", id(Plain), "x"), ("obj", id(object), "x")}
    assert not read[1]
    assert touched("STORE_ATTR", Access("write", "attr", "x", ("fast", "p"))) == (
        frozenset(),
        {(*place(p), "x")},
        False,
    )
    # A property's code may touch any attribute: the whole object.
    prop = touched("LOAD_ATTR", Access("read", "attr", "prop", ("fast", "p")))
    assert place(p) in prop[0] and (*place(p), "prop") not in prop[0]
    assert touched("LOAD_ATTR", Access("read", "attr", "__dict__", ("fast", "p"))) is None
    klass = Plain
    assert touched("STORE_ATTR", Access("write", "attr", "level", ("fast", "klass")))[1] == {
        ("obj", id(klass), "level")
    }
    module = sys.modules[__name__]
    assert touched("LOAD_ATTR", Access("read", "attr", "shared_global", ("fast", "module")))[0] == {
        ("global", "shared_global")
    }
    assert module is not None


def test_parts_and_wholes_overlap_as_memory_does() -> None:
    from critsec.explorer._dpor import Footprint, dependent, whole

    def step(reads: Any = (), writes: Any = (), values: Any = None) -> Footprint:
        return Footprint(set(reads), set(writes), opaque=False, values=values)

    o, x, y = ("obj", 1), ("obj", 1, "x"), ("obj", 1, "y")
    assert whole(x) == o and whole(o) is None and whole(("global", "x")) is None
    assert not dependent(step(writes=[x]), step(writes=[y]))  # two attributes
    assert dependent(step(writes=[x]), step(reads=[x]))
    assert dependent(step(writes=[o]), step(reads=[y]))  # list.append against an item
    assert dependent(step(reads=[o]), step(writes=[y]))  # iteration against a store
    assert not dependent(step(reads=[o]), step(reads=[y]))
    # The very same object stored in one place, in either order: one state.
    one, other = object(), object()
    assert not dependent(step(writes=[x], values={x: one}), step(writes=[x], values={x: one}))
    assert dependent(step(writes=[x], values={x: one}), step(writes=[x], values={x: other}))
    assert dependent(step(writes=[x], values={x: one}), step(writes=[x]))  # unknown: may differ
    assert dependent(step(writes=[o], values={o: one}), step(writes=[x], values={x: one}))


def test_attribute_access_that_may_run_anyones_code_is_opaque() -> None:
    guarded, lazy, event = Guarded(), Lazy(), threading.Event()
    assert touched("LOAD_ATTR", Access("read", "attr", "x", ("fast", "guarded"))) is None
    assert touched("LOAD_ATTR", Access("read", "attr", "missing", ("fast", "lazy"))) is None
    assert touched("LOAD_ATTR", Access("read", "attr", "x", ("fast", "unknown"))) is None
    # A classmethod is a descriptor: its code runs.
    assert touched("LOAD_ATTR", Access("read", "attr", "fromkeys", ("fast", "event"))) is not None
    assert None not in (guarded, lazy, event)  # (read through the frame, by name)


def test_items_of_plain_containers_and_immutable_ones() -> None:
    items, row, table, members = [1, 2], (1, 2), {"k": 1}, {1}

    here = sys._getframe()

    def item(container: str, key: Any, kind: str = "write", op: str = "") -> Any:
        code = "STORE_SUBSCR" if kind == "write" else "BINARY_SUBSCR"
        access = Access(kind, "subscr", "", ("fast", container), key, op)
        return footprint(here, code, "", access, None, {}, users)

    # An item in range, counted from either end, is a part of its list.
    assert item("items", ("const", 0)) == (frozenset(), {("obj", id(items), 0)}, False)
    assert item("items", ("const", -1), "read")[0] == {("obj", id(items), 1)}
    # Out of range, a del (the rest move), `x in list`: the whole list.
    assert item("items", ("const", 5))[1] == {("obj", id(items))}
    assert item("items", ("const", 0), op="del")[1] == {("obj", id(items))}
    assert item("items", ("const", 1), "read", "in")[0] == {("obj", id(items))}
    # A dict's key, `in` included, is a part; 1 and True are one key.
    assert item("table", ("const", "k"), "read", "in")[0] == {("obj", id(table), "k")}
    assert item("table", ("const", True))[1] == {("obj", id(table), 1)}
    assert item("table", ("const", 1.5))[1] == {("obj", id(table))}  # not a plain key
    assert item("members", ("const", 1), "read", "in")[0] == {("obj", id(members))}
    # A key this task has not loaded itself: the whole container.
    assert item("table", ("attr", ("fast", "table"), "k"))[1] == {("obj", id(table))}
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


def test_a_load_that_cannot_say_what_it_loads_forgets_an_older_note() -> None:
    # Notes are kept by frame id, and a dead frame's id may come back: a
    # note it left must not stand for what this load gets (a subscript of
    # it would then be said to touch the wrong list).
    lazy, key = Lazy(), ("attr", ("fast", "lazy"), "missing")
    memo: dict[Any, Any] = {(id(sys._getframe()), key): [1]}
    assert (
        touched("LOAD_ATTR", Access("read", "attr", "missing", ("fast", "lazy")), memo=memo) is None
    )
    assert (id(sys._getframe()), key) not in memo
    assert lazy is not None
