"""More of the trace, from hand-made events: a long trace in which every
step is a switch, a call's value in its cell, an ending without a failure
kind, and the recorder's bound on a runaway schedule."""

from __future__ import annotations

from critsec.explorer._driver import RunOutcome
from critsec.explorer._trace import MAX_ROWS, Event, Recorder, render_table

NAMES = ("add", "subtract")


def lost_update(line: int) -> tuple[Event, ...]:
    """add reads 10, subtract reads 10 and writes 9, add writes 11 over it."""
    where = f"t.py:{line}"
    return (
        Event(0, "read", "load", where, "x += 1", "global x", "10"),
        Event(1, "read", "load", where, "x += 1", "global x", "10"),
        Event(1, "write", "store", where, "x += 1", "global x", "9"),
        Event(0, "write", "store", where, "x += 1", "global x", "11"),
    )


def test_a_long_trace_of_switches_keeps_the_conflict_and_the_last_steps() -> None:
    # Every step switches task: "around every switch" would keep them all,
    # so only the conflict and the last steps are shown, the rest folded.
    chatter = tuple(Event(i % 2, "line", f"step {i}", f"t.py:{i}", f"step {i}") for i in range(300))
    events = (*chatter, *lost_update(900))
    lines = render_table(NAMES, events, RunOutcome("invariant", "x is 11")).splitlines()
    numbered = [line.split(" |")[0].strip() for line in lines if line[:3].strip().isdigit()]
    assert len(numbered) <= MAX_ROWS
    assert numbered[-4:] == ["301", "302", "303", "304"]  # the conflict, shown in full
    assert numbered[0] != "1"  # the start is folded
    skipped = int(numbered[0]) - 1
    assert f"⋮ {skipped} steps of add, subtract" in lines[2]  # both tasks ran in the fold
    assert lines[-1] == "failed (invariant): x is 11"


def test_a_cell_shows_a_value_its_text_does_not_already_say() -> None:
    events = (
        Event(0, "call", "q.get()", "t.py:5", "item = q.get()", None, "1"),
        Event(1, "call", "got 2", "t.py:6", "item = q.get()", None, "2"),
    )
    table = render_table(NAMES, events, RunOutcome("exception", "boom"))
    assert "| q.get() ➜ 1 |" in table
    assert "| got 2 " in table and "got 2 ➜ 2" not in table


def test_an_ending_without_a_failure_kind_is_its_message() -> None:
    table = render_table(NAMES, lost_update(3), RunOutcome(None, "passed, for the record"))
    assert table.splitlines()[-1] == "passed, for the record"
    assert "failed" not in table


def test_the_recorder_keeps_at_most_its_limit() -> None:
    recorder = Recorder(limit=3)
    for i in range(5):
        recorder.record(Event(0, "line", f"step {i}"))
    assert [event.text for event in recorder.events] == ["step 0", "step 1", "step 2"]
