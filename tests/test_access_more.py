"""More of ``critsec.explorer._access``, called directly.

In a real exploration this code runs inside the drivers' trace and
``sys.monitoring`` callbacks, where CPython traces nothing -- so neither a
debugger nor coverage ever sees it run there. These tests call it as the
drivers do, on real code objects and live frames, and check what it says:
which instruction touches what (the symbolic stack must keep the object and
the key straight across calls, method calls, ``with`` and module code), and
that peeking never runs user code and gives up (``MISSING``) rather than
guess.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from critsec.explorer._access import (
    DELETED,
    MISSING,
    Access,
    Names,
    ShortRepr,
    analyse,
    deleted_before,
    evaluate,
    is_data,
    locate,
    peek_attr,
    peek_read,
    peek_written,
    short,
)

shared: Any = [0]
box: Any = None


def found(fn: Any) -> list[Access]:
    code = fn if isinstance(fn, types.CodeType) else fn.__code__
    return list(analyse(code).values())


def subscripts(fn: Any) -> list[Access]:
    return [a for a in found(fn) if a.what == "subscr"]


# -- analyse: the symbolic stack ---------------------------------------------------


def test_a_global_read_before_a_call_keeps_the_container_of_a_subscript() -> None:
    # LOAD_GLOBAL len pushes a NULL beside the function (before it on 3.11
    # and 3.12, after it on 3.13): miscounted, the call would eat box.items.
    def index_by_call(x: list[int]) -> int:
        return int(box.items[len(x)])

    accesses = found(index_by_call)
    assert Access("read", "global", "box") in accesses
    assert Access("read", "global", "len") in accesses
    assert Access("read", "attr", "items", ("global", "box")) in accesses
    [item] = subscripts(index_by_call)
    assert item.obj == ("attr", ("global", "box"), "items")
    assert item.key == ("call", ("global", "len"))  # a call's result: never evaluated


def test_a_method_call_in_a_key_keeps_the_container() -> None:
    def index_by_method(d: dict[int, int], b: Any, v: int) -> int:
        return d[b.items.index(v)]

    accesses = found(index_by_method)
    assert Access("read", "attr", "index", ("attr", ("fast", "b"), "items")) in accesses
    [item] = subscripts(index_by_method)
    assert item.obj == ("fast", "d")
    assert item.key == ("call", ("method", ("attr", ("fast", "b"), "items"), "index"))


def test_two_locals_loaded_at_once_are_container_and_key() -> None:
    def pick(a: Any, b: int) -> Any:
        return a.x[b]

    [item] = subscripts(pick)
    assert item.obj == ("attr", ("fast", "a"), "x")
    assert item.key == ("fast", "b")


def test_a_with_statement_uses_its_context_manager_and_the_block_is_followed() -> None:
    def locked_update() -> None:
        global shared
        with box.lock:
            shared = [*shared, 1]

    accesses = found(locked_update)
    assert Access("use", "with", "", ("attr", ("global", "box"), "lock")) in accesses
    assert Access("read", "global", "shared") in accesses
    assert Access("write", "global", "shared") in accesses


def test_closure_variables_are_read_written_and_deleted() -> None:
    def outer() -> Any:
        n = 0

        def inner() -> None:
            nonlocal n
            n = n + 1
            del n

        return inner

    assert found(outer()) == [
        Access("read", "deref", "n"),
        Access("write", "deref", "n"),
        Access("write", "deref", "n", op="del"),
    ]


def test_module_level_names_are_globals() -> None:
    module_code = compile("x = y\ndel x\n", "<scenario>", "exec")
    assert found(module_code) == [
        Access("read", "global", "y"),
        Access("write", "global", "x"),
        Access("write", "global", "x", op="del"),
    ]


def test_augmented_item_and_attribute_writes_name_their_place() -> None:
    def bump(d: dict[str, int]) -> None:
        d["k"] += 1
        box.n += 1

    accesses = found(bump)
    assert Access("read", "subscr", "", ("fast", "d"), ("const", "k")) in accesses
    assert Access("write", "subscr", "", ("fast", "d"), ("const", "k")) in accesses
    assert Access("write", "attr", "n", ("global", "box")) in accesses


def test_swapped_attributes_are_written_on_the_right_object() -> None:
    def swap(d: Any, e: Any) -> None:
        d.a, e.b = e.b, d.a

    writes = [a for a in found(swap) if a.kind == "write"]
    assert writes == [
        Access("write", "attr", "a", ("fast", "d")),
        Access("write", "attr", "b", ("fast", "e")),
    ]


def test_a_chained_assignment_reads_once_and_writes_both() -> None:
    def chain(d: Any, e: Any) -> None:
        d.x = e.y = d.z

    accesses = found(chain)
    assert accesses.count(Access("read", "attr", "z", ("fast", "d"))) == 1
    assert Access("write", "attr", "x", ("fast", "d")) in accesses
    assert Access("write", "attr", "y", ("fast", "e")) in accesses


def test_deleted_attributes_and_items_are_writes() -> None:
    def forget(d: dict[str, int], b: Any) -> None:
        del d["k"]
        del b.n

    assert found(forget) == [
        Access("write", "subscr", "", ("fast", "d"), ("const", "k"), op="del"),
        Access("write", "attr", "n", ("fast", "b"), op="del"),
    ]


# -- evaluate and locate, in a live frame ---------------------------------------------


class Box:
    def __init__(self) -> None:
        self.n = 0
        self.items = [10, 20]

    @property
    def doubled(self) -> int:
        raise AssertionError("peeking must not run a property")


class Strict(dict[str, int]):
    """A dict subclass: its ``__getitem__`` may be anyone's code."""


def test_evaluate_reads_constants_locals_globals_builtins_and_items() -> None:
    frame = sys._getframe()
    b, table, strict = Box(), {"k": 1}, Strict(k=1)
    assert evaluate(None, frame) is MISSING
    assert evaluate(("const", 5), frame) == 5
    assert evaluate(("fast", "b"), frame) is b
    assert evaluate(("fast", "table"), frame) is table
    assert evaluate(("fast", "strict"), frame) is strict
    assert evaluate(("global", "shared"), frame) is shared
    assert evaluate(("global", "len"), frame) is len  # a builtin
    assert evaluate(("global", "no_such_name"), frame) is MISSING
    assert evaluate(("subscr", ("fast", "table"), ("const", "k")), frame) == 1
    assert evaluate(("subscr", ("fast", "table"), ("const", "x")), frame) is MISSING
    assert evaluate(("subscr", ("fast", "table"), ("fast", "nowhere")), frame) is MISSING
    assert evaluate(("subscr", ("fast", "strict"), ("const", "k")), frame) is MISSING
    assert evaluate(("attr", ("fast", "nowhere"), "n"), frame) is MISSING
    assert evaluate(("attr", ("fast", "b"), "doubled"), frame) is MISSING  # a property
    assert evaluate(("attr", ("fast", "b"), "n"), frame) == 0


def test_locate_names_variables_attributes_and_items() -> None:
    frame = sys._getframe()
    names = Names()
    b = Box()
    assert locate(Access("read", "deref", "n"), frame, names) == (None, "n", "nonlocal n")
    obj, display, location = locate(Access("write", "attr", "n", ("fast", "b")), frame, names)
    assert obj is b and display == location == "Box.n"
    item = Access("read", "subscr", "", ("attr", ("fast", "b"), "items"), ("const", 1))
    obj, display, _ = locate(item, frame, names)
    assert obj == (b.items, 1) and display == "list[1]"
    # What cannot be known without running code is not located.
    unknown = Access("read", "attr", "n", ("fast", "nowhere"))
    assert locate(unknown, frame, names) == (MISSING, "", "")
    no_key = Access("read", "subscr", "", ("fast", "b"), None)
    assert locate(no_key, frame, names)[0] is MISSING
    key = [1]
    assert evaluate(("fast", "key"), frame) is key
    odd_key = Access("read", "subscr", "", ("attr", ("fast", "b"), "items"), ("fast", "key"))
    assert locate(odd_key, frame, names)[0] is MISSING  # a key with no stable repr


# -- peeking the value read or written -------------------------------------------------


def test_peek_read_gives_items_attributes_and_variables_or_missing() -> None:
    frame = sys._getframe()
    b = Box()
    item = Access("read", "subscr", "", None, None)
    assert peek_read(item, frame, (b.items, 1)) == 20
    assert peek_read(item, frame, (b.items, 5)) is MISSING  # the instruction will raise
    assert peek_read(item, frame, (Strict(k=1), "k")) is MISSING
    member = Access("read", "subscr", "", None, None, op="in")
    assert peek_read(member, frame, ({"k": 1}, ["unhashable"])) is MISSING
    assert peek_read(Access("read", "attr", "n", None), frame, b) == 0
    assert isinstance(peek_read(Access("read", "attr", "doubled", None), frame, b), property)
    assert peek_read(Access("read", "global", "shared"), frame, None) is shared


def test_peek_written_gives_what_a_write_stored_or_missing() -> None:
    frame = sys._getframe()
    b = Box()
    b.n = 3
    assert peek_written(Access("write", "attr", "n", None), frame, b) == 3
    assert peek_written(Access("write", "attr", "doubled", None), frame, b) is MISSING
    item = Access("write", "subscr", "", None, None)
    assert peek_written(item, frame, (b.items, 0)) == 10
    assert peek_written(item, frame, ({"k": 2}, "k")) == 2
    assert peek_written(item, frame, (Strict(k=1), "k")) is MISSING
    assert peek_written(Access("write", "global", "shared"), frame, None) is shared


class Slotted:
    __slots__ = ("x",)

    def __init__(self) -> None:
        self.x = 1


class Described:
    """A data descriptor that is no property, and a plain class attribute."""

    class Field:
        def __get__(self, obj: Any, owner: Any) -> int:
            raise AssertionError("peeking must not run a descriptor")

        def __set__(self, obj: Any, value: int) -> None:
            raise AssertionError("peeking must not run a descriptor")

    field = Field()
    kind = "described"


def test_deleted_before_refuses_descriptors_of_their_own() -> None:
    frame = sys._getframe()
    delete_x = Access("write", "attr", "x", None, op="del")
    assert deleted_before(delete_x, frame, Slotted()) is MISSING  # a slot's own __delete__
    delete_kind = Access("write", "attr", "kind", None, op="del")
    assert deleted_before(delete_kind, frame, Described()) is DELETED  # a plain class attribute
    assert deleted_before(Access("write", "global", "g", op="del"), frame, None) is DELETED
    assert deleted_before(Access("write", "subscr", "", None, None, op="del"), frame, ([1], 0))


def test_peek_attr_looks_in_class_and_type_dicts_and_calls_nothing() -> None:
    assert peek_attr(Described(), "field") is MISSING
    assert peek_attr(Described(), "kind") == "described"  # from the class
    assert peek_attr(Slotted(), "x") == 1  # a slot, no __dict__
    assert peek_attr(Slotted(), "nothing") is MISSING
    assert peek_attr(Box, "doubled") is Box.__dict__["doubled"]  # on the class: the object
    assert peek_attr(Strict, "fromkeys") is dict.__dict__["fromkeys"]  # found up the mro
    assert peek_attr(Box, "nothing") is MISSING
    assert peek_attr(3, "real") is MISSING  # a getset descriptor of int: only a call tells


# -- names and reprs -----------------------------------------------------------------


def test_a_module_is_named_by_its_name() -> None:
    assert Names().of(sys) == "sys"


class Wordy:
    def __repr__(self) -> str:
        return "Wordy(" + "x" * 100 + ")"


class Terse:
    def __repr__(self) -> str:
        return "Terse()"


class Broken:
    def __repr__(self) -> str:
        raise ValueError("no repr today")


def test_short_reprs_are_cut_in_the_middle_and_survive_a_failing_repr() -> None:
    reprs = ShortRepr(Names())
    text = reprs.repr(Wordy())
    assert len(text) == 40 and text.startswith("Wordy(xx") and text.endswith("xx)")
    assert "..." in text
    assert reprs.repr(Broken()) == "<Broken instance>"
    assert reprs.repr(Terse()) == "Terse()"  # short enough: whole
    assert short("y" * 100, width=10) == "'yyyyyyyy…"
    assert short([1, 2]) == "[1, 2]"


@pytest.mark.parametrize(
    ("value", "data"),
    [(3, True), ("s", True), (sys, False), (print, False), (Box(), False), (Wordy(), True)],
)
def test_is_data_keeps_values_and_leaves_out_code_modules_and_references(
    value: Any, data: bool
) -> None:
    assert is_data(value) is data
