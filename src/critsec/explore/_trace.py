"""What happened in one schedule, step by step: the trace.

Drivers record :class:`Event` objects as tasks run; after a failure the
events of the failing schedule are rendered for people (one column per
task, one row per step, as Lincheck does) and as JSON for tools.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Event", "Recorder"]


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


# -- rendering (a first version: one column per task, one row per event) --------


def render_table(names: tuple[str, ...], events: tuple[Event, ...], outcome: Any) -> str:
    """The failing schedule for people: one column per task, one row per step,
    ``switch`` where another task took over."""
    if not events:
        return f"(no steps recorded)\n{outcome.message}"
    width = 36
    header = "| " + " | ".join(f"{name:<{width}}" for name in names) + " |"
    rule = "|" + "|".join("-" * (width + 2) for _ in names) + "|"
    rows = [header, rule]
    previous: int | None = None
    for event in events:
        if previous is not None and event.task != previous and 0 <= previous < len(names):
            rows.append(_row(names, previous, "switch", width))
        text = event.text if not event.where else f"{event.text}  [{event.where}]"
        rows.append(_row(names, event.task, text, width))
        previous = event.task
    lines = "\n".join(rows)
    detail = f"\n{outcome.detail.rstrip()}" if outcome.detail else ""
    return f"{lines}\n{outcome.message}{detail}"


def _row(names: tuple[str, ...], task: int, text: str, width: int) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    cells = [text if i == task else "" for i in range(len(names))]
    return "| " + " | ".join(f"{cell:<{width}}" for cell in cells) + " |"


def render_json(names: tuple[str, ...], events: tuple[Event, ...]) -> dict[str, Any]:
    """The same trace as JSON-ready data."""
    return {"tasks": list(names), "steps": [event.to_json() for event in events]}
