"""What happened in one schedule, step by step: the trace.

Drivers record :class:`Event` objects as tasks run; after a failure the
events of the failing schedule are rendered for people (one column per
task, one row per step, as Lincheck does) and as JSON for tools, with the
accesses that conflicted marked.

Why a conflict is what it is: a failure is explained by an access of one
task falling *between* two consecutive accesses of another task to the
same location, in one of the four orders that no serial run produces
(AVIO, Lu, Tucek, Qin and Zhou, ASPLOS 2006). With A's pair around B's
access:

==================  =========================================
read, write, write  lost update: A writes over B's update
read, write, read   stale read: A's two reads disagree
write, read, write  B saw A's half-done update
write, write, read  A does not read back its own write
==================  =========================================

A counter loop shows the last order harmlessly between its iterations, so
only the most telling order found (in the order above) is marked.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Conflict",
    "Event",
    "Recorder",
    "find_conflicts",
    "render_json",
    "render_table",
    "summary",
]


@dataclass(frozen=True)
class Event:
    """One step of one task, as shown in a trace.

    ``kind`` is one of ``read`` (a shared value was read; ``value`` is what
    was read), ``write`` (``value`` is what was written), ``call``,
    ``acquire``, ``release``, ``block`` (the task must wait; ``text`` says
    for what), ``wake``, ``wait`` (a condition wait began), ``yield`` /
    ``await`` (a switch point a coroutine chose), ``line`` (a source line
    began, when nothing finer is known), ``return``, ``raise`` (with the
    traceback in ``detail``). ``location`` names the shared thing touched
    (``"global counter"``, ``"Counter.value"``), so reads and writes of the
    same thing by different tasks can be paired as conflicts.
    """

    task: int
    kind: str
    text: str
    where: str = ""  # "file.py:12"
    source: str = ""  # that line's source, stripped
    location: str | None = None
    value: str | None = None  # repr of the value read or written
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}


@dataclass
class Recorder:
    """Collects the events of one schedule, in the order they happened."""

    events: list[Event] = field(default_factory=list)
    limit: int = 20_000  # a runaway schedule must not eat the memory

    def record(self, event: Event) -> None:
        if len(self.events) < self.limit:
            self.events.append(event)


# -- conflicts -------------------------------------------------------------------

#: (A's access, B's access, A's next access) -> (rank, name): see the module note.
_PATTERNS: dict[tuple[str, str, str], tuple[int, str]] = {
    ("read", "write", "write"): (0, "lost update"),
    ("read", "write", "read"): (1, "stale read"),
    ("write", "read", "write"): (2, "intermediate state seen"),
    ("write", "write", "read"): (3, "overwritten write"),
}
_TEMPLATES = {
    "lost update": "lost update on {x}: {a} {r1} (step {s1}), {b} {r2} (step {s2}), "
    "{a} {r3} over it (step {s3})",
    "stale read": "stale read of {x}: {a} {r1} (step {s1}), {b} {r2} (step {s2}), "
    "{a} {r3} (step {s3})",
    "intermediate state seen": "intermediate state of {x}: {a} {r1} (step {s1}), "
    "{b} {r2} (step {s2}) before {a} {r3} (step {s3})",
    "overwritten write": "overwritten write to {x}: {a} {r1} (step {s1}), {b} {r2} (step {s2}), "
    "{a} {r3} (step {s3}), not its own write",
}

#: At most this many conflicts are marked: the last ones, nearest the failure.
MAX_CONFLICTS = 5


@dataclass(frozen=True)
class Conflict:
    """Three accesses to one ``location`` that explain a failure: task A's
    two consecutive accesses and task B's access in between. ``steps`` are
    1-based positions in the trace, in time order; ``pattern`` names the
    order ("lost update", ...); ``text`` says it in one sentence."""

    pattern: str
    location: str
    steps: tuple[int, int, int]
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "location": self.location,
            "steps": list(self.steps),
            "text": self.text,
        }


def _name(names: tuple[str, ...], task: int) -> str:
    return names[task] if 0 <= task < len(names) else f"task {task}"


def _says(event: Event) -> str:
    """'read 10' / 'wrote 11' (no value when none was recorded)."""
    verb = "read" if event.kind == "read" else "wrote"
    return verb if event.value is None else f"{verb} {event.value}"


def find_conflicts(names: tuple[str, ...], events: tuple[Event, ...]) -> list[Conflict]:
    """The conflicts that explain a failing schedule (see the module note):
    the instances of the most telling order present -- the last
    ``MAX_CONFLICTS`` of them -- in time order. Pure; any caller."""
    accesses: dict[str, list[int]] = {}
    for i, event in enumerate(events):
        if event.kind in ("read", "write") and event.location is not None:
            accesses.setdefault(event.location, []).append(i)
    found: list[tuple[int, tuple[int, int, int]]] = []
    for indices in accesses.values():
        last_of: dict[int, int] = {}  # task -> position in indices of its last access
        for position, j in enumerate(indices):
            task = events[j].task
            if task in last_of:
                i = indices[last_of[task]]
                # The remote access nearest A's second one decides: for a
                # lost update it is the write that A overwrites.
                for k in reversed(indices[last_of[task] + 1 : position]):
                    kinds = (events[i].kind, events[k].kind, events[j].kind)
                    if events[k].task != task and kinds in _PATTERNS:
                        found.append((_PATTERNS[kinds][0], (i, k, j)))
                        break
            last_of[task] = position
    if not found:
        return []
    best = min(rank for rank, _ in found)
    pattern = next(name for rank, name in _PATTERNS.values() if rank == best)
    conflicts = []
    for i, k, j in sorted(trio for rank, trio in found if rank == best)[-MAX_CONFLICTS:]:
        a, b, c = events[i], events[k], events[j]
        text = _TEMPLATES[pattern].format(
            r1=_says(a),
            r2=_says(b),
            r3=_says(c),
            x=a.location,
            a=_name(names, a.task),
            b=_name(names, b.task),
            s1=i + 1,
            s2=k + 1,
            s3=j + 1,
        )
        conflicts.append(Conflict(pattern, a.location or "", (i + 1, k + 1, j + 1), text))
    return conflicts


def _conflicts_for(
    names: tuple[str, ...], events: tuple[Event, ...], outcome: Any
) -> list[Conflict]:
    # A deadlock is explained by who waits on what, not by data races.
    if getattr(outcome, "kind", None) == "deadlock":
        return []
    return find_conflicts(names, events)


# -- the table ---------------------------------------------------------------------

#: Total width of a table: fixed rather than the terminal's, so that one
#: schedule always renders to the same text (replay compares traces).
WIDTH = 100
#: Traces with more steps show only those around switches, conflicts,
#: blocks and the end; the others fold into "⋮ n steps" rows.
MAX_ROWS = 80
CONFLICT_MARK = "⚠"
SWITCH = "switch"
_MIN_SIDE = 24  # the side column keeps room for "file.py:123  some source"
_MIN_CELL = 10
_MAX_CELL = 32


def _flat(text: str) -> str:
    return text.replace("\r", "").replace("\n", "\\n").replace("\t", " ")


def _cell(event: Event) -> str:
    """A task's column for one step: Lincheck's ``x ➜ 0`` for a read and
    ``x = 1`` for a write; the driver's text otherwise."""
    if event.kind in ("read", "write") and event.location and event.value is not None:
        arrow = "➜" if event.kind == "read" else "="
        # "global counter" -> "counter": only shared things are recorded, so
        # a bare name is a global; the conflict sentences keep the full name.
        name = event.location.removeprefix("global ")
        return _flat(f"{name} {arrow} {event.value}")
    text = event.text or event.kind
    if event.value is not None and event.value not in text:
        text = f"{text} ➜ {event.value}"
    return _flat(text)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _where(event: Event) -> str:
    # "/a/long/path/file.py:12" -> "file.py:12": the row only has to be
    # found in the file; the full path is in the traceback or the command.
    return event.where.replace("\\", "/").rsplit("/", 1)[-1]


def _visible_steps(events: tuple[Event, ...], marked: set[int], limit: int) -> list[int]:
    """The steps that get a row: all when they fit in ``limit`` rows; else
    those around a switch, a conflict, a block or raise, the first and the
    last; failing that, those around a conflict and the last ones."""
    n = len(events)
    if n <= limit:
        return list(range(n))

    def around(indices: set[int]) -> set[int]:
        return {j for i in indices for j in range(i - 1, i + 2) if 0 <= j < n}

    telling = marked | {0, n - 1}
    for i, event in enumerate(events):
        if (
            (i > 0 and events[i - 1].task != event.task)
            or (i + 1 < n and events[i + 1].task != event.task)
            or event.kind in ("block", "raise")
        ):
            telling.add(i)
    keep = around(telling)
    if len(keep) > limit:
        keep = around(marked)
        keep |= set(range(max(n - max(limit - len(keep), 1), 0), n))
    return sorted(keep)


@dataclass(frozen=True)
class _Row:
    label: str  # the step number, or "" for switch and fold rows
    task: int | None  # whose column the text goes in
    text: str = ""
    mark: str = ""  # " ⚠1": kept when the text is cut
    where: str = ""  # "file.py:12"
    side: str = ""  # that line's source, or a note


def _rows(
    names: tuple[str, ...], events: tuple[Event, ...], marks: dict[int, list[int]]
) -> list[_Row]:
    rows: list[_Row] = []
    last_side: tuple[int, str] | None = None
    shown = -1
    for i in _visible_steps(events, set(marks), MAX_ROWS):
        if i > shown + 1:
            skipped = events[shown + 1 : i]
            tasks = sorted({event.task for event in skipped})
            fold = f"⋮ {len(skipped)} steps"
            if len(tasks) == 1:
                rows.append(_Row("", tasks[0], fold))
            else:
                who = ", ".join(_name(names, task) for task in tasks)
                rows.append(_Row("", None, side=f"{fold} of {who}"))
            last_side = None
        event = events[i]
        if i > 0 and events[i - 1].task != event.task:
            rows.append(_Row("", events[i - 1].task, SWITCH))
        cell, where, source = _cell(event), "", ""
        if event.where and (event.task, event.where) != last_side:
            where = _where(event)
            # A line event's text is its source already: say it once.
            source = "" if _flat(event.source) == cell else _flat(event.source)
        last_side = (event.task, event.where)
        mark = f" {CONFLICT_MARK}" + ",".join(map(str, marks[i])) if i in marks else ""
        rows.append(_Row(str(i + 1), event.task, cell, mark, where, source))
        shown = i
    return rows


def _widths(natural: list[int], side: int, fixed: int, width: int) -> tuple[list[int], int]:
    """Column widths that fit ``width``. The task columns carry the story,
    so they give way last: first the widest of them down to ``_MAX_CELL``,
    then the side column down to ``_MIN_SIDE``, then the widest task
    columns again, down to ``_MIN_CELL``."""
    cells = [max(w, len(SWITCH)) for w in natural]
    side_floor = min(side, _MIN_SIDE)

    def shrink(floor: int) -> None:
        while fixed + sum(cells) + side_floor > width and max(cells) > floor:
            cells[cells.index(max(cells))] -= 1

    side_floor = side
    shrink(_MAX_CELL)
    side_floor = min(side, _MIN_SIDE)
    shrink(_MIN_CELL)
    return cells, min(side, max(side_floor, width - fixed - sum(cells)))


def _table(names: tuple[str, ...], rows: list[_Row], steps: int, width: int) -> list[str]:
    number = len(str(steps))
    natural = [len(name) for name in names]
    for row in rows:
        if row.task is not None and 0 <= row.task < len(names):
            natural[row.task] = max(natural[row.task], len(row.text) + len(row.mark))
    # The side column: "file.py:12  source", the sources aligned.
    where_width = max(len(row.where) for row in rows)
    sides = [
        f"{row.where:<{where_width}}  {row.side}".rstrip() if row.where else row.side
        for row in rows
    ]
    side_natural = max([len("line"), *map(len, sides)])
    cells, side = _widths(natural, side_natural, number + 3 * (len(names) + 1), width)

    def line(label: str, texts: list[str], side_text: str) -> str:
        columns = [f"{text:<{w}}" for text, w in zip(texts, cells, strict=True)]
        return f"{label:>{number}} | " + " | ".join(columns) + f" | {_fit(side_text, side)}"

    out = [
        line("#", [_fit(name, w) for name, w in zip(names, cells, strict=True)], "line"),
        "-+-".join("-" * w for w in [number, *cells, side]),
    ]
    for row, side_text in zip(rows, sides, strict=True):
        texts = [""] * len(names)
        if row.task is not None and 0 <= row.task < len(names):
            w = cells[row.task]
            texts[row.task] = _fit(row.text, w - len(row.mark)) + row.mark
        out.append(line(row.label, texts, side_text).rstrip())
    return out


def _waits(names: tuple[str, ...], events: tuple[Event, ...]) -> str:
    """Who waits on what in a deadlock: each task whose last event is a block."""
    last: dict[int, Event] = {}
    for event in events:
        last[event.task] = event
    return "\n".join(
        f"{_name(names, task)} waits: {event.text}" + (f" ({_where(event)})" if event.where else "")
        for task, event in sorted(last.items())
        if event.kind == "block"
    )


def _ending(
    names: tuple[str, ...], events: tuple[Event, ...], conflicts: list[Conflict], outcome: Any
) -> list[str]:
    """Below the table: the conflicts in words, the failure, its detail."""
    lines = [
        textwrap.fill(f"{CONFLICT_MARK}{n} {c.text}", WIDTH, subsequent_indent="   ")
        for n, c in enumerate(conflicts, 1)
    ]
    kind = getattr(outcome, "kind", None)
    message = getattr(outcome, "message", "")
    if kind is not None:
        message = message.removeprefix(f"{kind}: ")  # "failed (deadlock): deadlock: ..."
        lines.append(f"failed ({kind}): {message}" if message else f"failed ({kind})")
    elif message:
        lines.append(message)
    detail = getattr(outcome, "detail", "") or (_waits(names, events) if kind == "deadlock" else "")
    if detail:
        lines.append(detail.rstrip())
    return lines


def render_table(
    names: tuple[str, ...], events: tuple[Event, ...], outcome: Any, *, width: int = WIDTH
) -> str:
    """The failing schedule for people, after Lincheck: one column per
    task, one numbered row per step (``x ➜ 0`` a read, ``x = 1`` a write),
    a ``switch`` row in the column of the task switched away from, ``⚠n``
    on the three accesses of conflict *n*, and a side column with
    ``file:line  source`` whenever they change. Below: the conflicts in
    words, the failure (``outcome``: anything with ``kind``, ``message`` and
    ``detail``, e.g. a RunOutcome), and the traceback of an exception or
    who waits on what in a deadlock.

    Pure and deterministic -- the same events give the same text. Any
    caller; never blocks.
    """
    conflicts = _conflicts_for(names, events, outcome)
    ending = _ending(names, events, conflicts, outcome)
    if not events:
        return "\n".join(["(no steps recorded)", *ending])
    marks: dict[int, list[int]] = {}
    for number, conflict in enumerate(conflicts, 1):
        for step in conflict.steps:
            marks.setdefault(step - 1, []).append(number)
    table = _table(names, _rows(names, events, marks), len(events), width)
    return "\n".join([*table, *ending])


def render_json(
    names: tuple[str, ...], events: tuple[Event, ...], outcome: Any = None
) -> dict[str, Any]:
    """The same trace as JSON-ready data: ``tasks`` (names), ``steps``
    (numbered from 1, each with its event's fields and ``switch: true``
    where another task took over), ``conflicts`` (as in the table, by step
    number) and, given an ``outcome``, ``outcome`` (kind, message, detail,
    task). Pure; any caller."""
    steps = []
    for i, event in enumerate(events):
        step: dict[str, Any] = {"step": i + 1, **event.to_json()}
        if i > 0 and events[i - 1].task != event.task:
            step["switch"] = True
        steps.append(step)
    data: dict[str, Any] = {
        "tasks": list(names),
        "steps": steps,
        "conflicts": [c.to_json() for c in _conflicts_for(names, events, outcome)],
    }
    if outcome is not None:
        data["outcome"] = {
            key: getattr(outcome, key, None) for key in ("kind", "message", "detail", "task")
        }
    return data


# -- a result in words ---------------------------------------------------------------


def _schedules(n: int) -> str:
    return f"{n} schedule" if n == 1 else f"{n} schedules"


def summary(result: Any, replay_hint: str) -> str:
    """A :class:`~._explore.Result` for people, as the command line and
    ``check`` print it. A pass is one line: schedules run, strategy, seed,
    and whether the search was exhausted (a proof within the bound) or
    not. A failure is that line, the trace, and ``replay_hint`` with
    ``{token}`` replaced by the replay token (left out for a result that
    is itself a replay). Pure; any caller."""
    if result.strategy == "replay":
        if not result.failed:
            return f"the schedule ran without failure ({result.seconds:.2f} s)"
        return f"{result.kind} failure in the replayed schedule:\n{result.trace}"
    how = f"strategy {result.strategy}, seed {result.seed}, {result.seconds:.2f} s"
    if not result.failed:
        proof = (
            "exhausted: every schedule was tried, so this is a proof"
            if result.exhausted
            else "not exhausted: more schedules might still find one"
        )
        return f"no failure in {_schedules(result.schedules)} ({how}); {proof}"
    return (
        f"{result.kind} failure after {_schedules(result.schedules)} ({how}):\n"
        f"{result.trace}\n" + replay_hint.replace("{token}", str(result.schedule))
    )
