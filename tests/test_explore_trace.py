"""The explorer's trace, rendered from hand-made events: the table people
read (columns, switches, conflicts, folding, the failure below) and its
JSON form. No driver runs here; every expectation is exact."""

from __future__ import annotations

import json

import pytest

from critsec.explorer._driver import RunOutcome
from critsec.explorer._trace import (
    MAX_ROWS,
    WIDTH,
    Event,
    find_conflicts,
    render_json,
    render_table,
)

NAMES = ("add", "subtract")
X = "global counter"


def read(task: int, value: int, line: int = 5, location: str = X) -> Event:
    return Event(
        task, "read", "load", f"/src/lesson.py:{line}", "counter += 1", location, str(value)
    )


def write(task: int, value: int, line: int = 5, location: str = X) -> Event:
    return Event(
        task, "write", "store", f"/src/lesson.py:{line}", "counter += 1", location, str(value)
    )


#: The lesson's lost update: add reads 10, subtract reads 10 and writes 9,
#: add writes 11 over it.
LOST_UPDATE = (
    Event(0, "line", "counter += 1", "/src/lesson.py:5", "counter += 1"),
    read(0, 10),
    read(1, 10, line=9),
    write(1, 9, line=9),
    write(0, 11),
    Event(1, "return", "returns None"),
)
BROKEN = RunOutcome("invariant", "the invariant does not hold: state is 11")


def test_lost_update_table() -> None:
    assert render_table(NAMES, LOST_UPDATE, BROKEN) == "\n".join(
        [
            "# | add             | subtract       | line",
            "--+-----------------+----------------+--------------------------",
            "1 | counter += 1    |                | lesson.py:5",
            "2 | counter ➜ 10 ⚠1 |                |",
            "  | switch          |                |",
            "3 |                 | counter ➜ 10   | lesson.py:9  counter += 1",
            "4 |                 | counter = 9 ⚠1 |",
            "  |                 | switch         |",
            "5 | counter = 11 ⚠1 |                | lesson.py:5  counter += 1",
            "  | switch          |                |",
            "6 |                 | returns None   |",
            "⚠1 lost update on global counter: add read 10 (step 2), subtract wrote 9 (step 4), "
            "add wrote 11 over\n   it (step 5)",
            "failed (invariant): the invariant does not hold: state is 11",
        ]
    )


def test_lost_update_json_has_steps_switches_conflicts_and_outcome() -> None:
    data = render_json(NAMES, LOST_UPDATE, BROKEN)
    assert json.loads(json.dumps(data)) == data  # JSON-ready as it is
    assert data["tasks"] == ["add", "subtract"]
    assert [s["step"] for s in data["steps"]] == [1, 2, 3, 4, 5, 6]
    assert [s.get("switch", False) for s in data["steps"]] == [
        False,
        False,
        True,
        False,
        True,
        True,
    ]
    assert data["steps"][1] == {
        "step": 2,
        "task": 0,
        "kind": "read",
        "text": "load",
        "where": "/src/lesson.py:5",
        "source": "counter += 1",
        "location": X,
        "value": "10",
    }
    [conflict] = data["conflicts"]
    assert conflict["pattern"] == "lost update"
    assert conflict["location"] == X
    assert conflict["steps"] == [2, 4, 5]
    assert data["outcome"] == {
        "kind": "invariant",
        "message": BROKEN.message,
        "detail": "",
        "task": None,
    }


def test_json_without_an_outcome_has_no_outcome() -> None:
    assert "outcome" not in render_json(NAMES, LOST_UPDATE)


@pytest.mark.parametrize(
    ("accesses", "pattern", "steps"),
    [
        # (task, kind) in time order on one location
        ([(0, "read"), (1, "write"), (0, "write")], "lost update", (1, 2, 3)),
        ([(0, "read"), (1, "write"), (0, "read")], "stale read", (1, 2, 3)),
        ([(0, "write"), (1, "read"), (0, "write")], "intermediate state seen", (1, 2, 3)),
        ([(0, "write"), (1, "write"), (0, "read")], "overwritten write", (1, 2, 3)),
        # B's second write is the one A overwrites.
        ([(0, "read"), (1, "write"), (1, "write"), (0, "write")], "lost update", (1, 3, 4)),
        # A's *last* access before its write pairs with it: A re-read after B.
        ([(0, "read"), (1, "write"), (0, "read"), (0, "write")], "stale read", (1, 2, 3)),
    ],
)
def test_each_unserializable_order_is_a_conflict(
    accesses: list[tuple[int, str]], pattern: str, steps: tuple[int, int, int]
) -> None:
    events = tuple(Event(task, kind, kind, location=X, value="0") for task, kind in accesses)
    [conflict] = find_conflicts(NAMES, events)
    assert (conflict.pattern, conflict.steps) == (pattern, steps)


@pytest.mark.parametrize(
    "accesses",
    [
        [(0, "read"), (0, "write"), (1, "read"), (1, "write")],  # serial
        [(0, "read"), (1, "read"), (0, "read")],  # reads only
        [(0, "write"), (1, "write"), (0, "write")],  # blind writes: serialisable
        [(0, "read"), (1, "read"), (0, "write")],  # B only read before A wrote
    ],
)
def test_serialisable_orders_are_no_conflict(accesses: list[tuple[int, str]]) -> None:
    events = tuple(Event(task, kind, kind, location=X, value="0") for task, kind in accesses)
    assert find_conflicts(NAMES, events) == []


def test_different_locations_and_unlocated_accesses_do_not_pair() -> None:
    events = (
        Event(0, "read", "r", location="a", value="0"),
        Event(1, "write", "w", location="b", value="1"),
        Event(0, "write", "w", location="a", value="1"),
        Event(0, "read", "r", value="1"),
        Event(1, "write", "w", value="2"),
        Event(0, "write", "w", value="3"),
    )
    assert find_conflicts(NAMES, events) == []


def test_only_the_most_telling_order_is_marked() -> None:
    # Between its two iterations A's write, B's update and A's next read form
    # an "overwritten write" -- harmless; the lost update is what matters.
    events = (
        read(0, 10),
        write(0, 11),  # A, iteration 1
        read(1, 11),
        write(1, 10),  # B, whole
        read(0, 10),
        read(1, 10),
        write(1, 9),
        write(0, 11),  # A, iteration 2, lost
    )
    conflicts = find_conflicts(NAMES, events)
    assert [(c.pattern, c.steps) for c in conflicts] == [("lost update", (5, 7, 8))]


def test_several_conflicts_are_numbered_in_time_order() -> None:
    events = (
        read(0, 10),
        read(1, 10),
        write(1, 9),
        write(0, 11),
        read(0, 11),
        read(1, 11),
        write(1, 10),
        write(0, 12),
    )
    table = render_table(NAMES, events, BROKEN)
    assert [line[:3] for line in table.splitlines() if line.startswith("⚠")] == ["⚠1 ", "⚠2 "]
    assert "| counter ➜ 10 ⚠1 |" in table
    assert "| counter ➜ 11 ⚠2 |" in table
    assert "(step 1)" in table and "(step 7)" in table


def test_exception_puts_the_traceback_below_the_table() -> None:
    traceback = "Traceback (most recent call last):\n  File \"t.py\", line 3\nKeyError: 'k'\n"
    events = (
        Event(0, "line", "if k in d:", "t.py:2", "if k in d:"),
        Event(1, "line", "del d[k]", "t.py:7", "del d[k]"),
        Event(0, "raise", "raises KeyError: 'k'", detail=traceback),
    )
    outcome = RunOutcome("exception", "task 'add' raised KeyError: 'k'", traceback, 0)
    lines = render_table(NAMES, events, outcome).splitlines()
    assert lines[-4:] == [
        "failed (exception): task 'add' raised KeyError: 'k'",
        "Traceback (most recent call last):",
        '  File "t.py", line 3',
        "KeyError: 'k'",
    ]
    assert lines[-5].startswith("3 | raises KeyError: 'k'")


def test_deadlock_shows_who_waits_on_what_and_no_conflicts() -> None:
    events = (
        read(0, 1, location="x"),
        write(1, 2, location="x"),
        write(0, 3, location="x"),
        Event(0, "block", "waits for lock b", "/src/t.py:4", "with b:"),
        Event(1, "block", "waits for lock a", "/src/t.py:9", "with a:"),
    )
    outcome = RunOutcome("deadlock", "deadlock: every unfinished task waits")
    table = render_table(NAMES, events, outcome)
    assert "⚠" not in table
    assert table.splitlines()[-3:] == [
        "failed (deadlock): every unfinished task waits",  # not "deadlock: deadlock: "
        "add waits: waits for lock b (t.py:4)",
        "subtract waits: waits for lock a (t.py:9)",
    ]
    # The driver's own account, when it gives one, is shown instead.
    told = RunOutcome("deadlock", "deadlock", "  task 'add' waits for b")
    assert render_table(NAMES, events, told).splitlines()[-1] == "  task 'add' waits for b"
    assert render_json(NAMES, events, outcome)["conflicts"] == []


def test_long_cells_are_cut_but_keep_their_mark_and_fit_the_width() -> None:
    big = "x" * 200
    events = (
        Event(0, "read", "r", "/a/very/long/path/module.py:120", "y = " + big, "state", big),
        Event(1, "write", "w", "/a/very/long/path/module.py:130", "state = " + big, "state", "1"),
        Event(0, "write", "w", "/a/very/long/path/module.py:121", "state = y", "state", big),
    )
    lines = render_table(("first_task_name_" * 4, "second"), events, BROKEN).splitlines()
    table = lines[: lines.index(next(line for line in lines if line.startswith("⚠1")))]
    assert all(len(line) <= WIDTH for line in table)
    assert "…" in table[0]  # the long task name is cut in the header
    assert "… ⚠1 |" in table[2]  # the long value is cut, its mark kept
    assert "module.py:120  y = xxx" in table[2] and table[2].endswith("…")


def test_newlines_in_values_stay_on_one_row() -> None:
    events = (Event(0, "write", "w", "t.py:1", "s = 'a\\nb'", "s", "'a\nb'"),)
    [row] = [
        line for line in render_table(NAMES, events, BROKEN).splitlines() if line.startswith("1 |")
    ]
    assert "s = 'a\\nb'" in row


def test_a_long_trace_folds_all_but_the_telling_steps() -> None:
    # add runs 150 uneventful lines, then the lost update happens.
    quiet = tuple(Event(0, "line", f"step {i}", f"t.py:{i}", f"step {i}") for i in range(150))
    events = (*quiet, read(0, 10), read(1, 10), write(1, 9), write(0, 11))
    lines = render_table(NAMES, events, BROKEN).splitlines()
    assert len(events) > MAX_ROWS and len(lines) < 20
    assert "    | ⋮ 147 steps     |                |" in lines  # steps 3..149
    numbered = [line.split(" |")[0].strip() for line in lines[2:] if line[:3].strip().isdigit()]
    assert numbered == ["1", "2", "150", "151", "152", "153", "154"]
    assert sum("⚠1" in line for line in lines) == 4  # three marks and the sentence


def test_no_events() -> None:
    assert render_table(NAMES, (), BROKEN) == (
        "(no steps recorded)\nfailed (invariant): the invariant does not hold: state is 11"
    )
