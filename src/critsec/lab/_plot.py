"""Charts of the lab's results, with matplotlib (the ``critsec[lab]`` extra).

matplotlib is imported only when a chart is drawn, and its absence is one
clear error (:class:`MissingExtra`) raised before any work starts.

The counter's and the pipeline's charts are drawn from the very records
``--json`` prints. What they plotted is read back from the figure's own
bars and lines and returned, and a PNG carries it too, as JSON in a text
chunk named ``critsec`` (:data:`PLOTTED_KEY`): a test can hold a chart
against the run's JSON without comparing pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from ._bench import BenchRow

__all__ = [
    "PLOTTED_KEY",
    "MissingExtra",
    "image_format",
    "plot_bench",
    "plot_counter",
    "plot_pipeline",
    "require_matplotlib",
]

#: The PNG text chunk that holds what a counter or pipeline chart plotted.
PLOTTED_KEY = "critsec"

#: Where a chart goes: a path (its suffix picks the format) or a binary file (PNG).
Target = str | Path | IO[bytes]


class MissingExtra(RuntimeError):
    """An optional dependency that is not installed."""


def require_matplotlib() -> Any:
    """The ``matplotlib.pyplot`` module, drawing to files only."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra("plots need matplotlib: pip install 'critsec[lab]'") from None
    matplotlib.use("Agg")  # no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def plot_bench(rows: list[BenchRow], path: str | Path, title: str) -> None:
    """Two panels: each row's ratio (a bar, its target a tick), and the
    sweep rows' time per update against the number of tasks."""
    plt = require_matplotlib()
    compared = [r for r in rows if not r.skipped and "sweep" not in r.name]
    sweep = [r for r in rows if not r.skipped and "sweep" in r.name]
    panels = [p for p in (compared, sweep) if p]
    if not panels:
        raise ValueError("nothing to plot: every row was skipped")
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(9, 0.35 * len(compared) + 3 * len(panels) + 1), squeeze=False
    )
    figure.suptitle(title)
    panel = iter(axes[:, 0])
    if compared:
        ax = next(panel)
        names = [r.name for r in compared]
        ratios = [r.ratio for r in compared]
        colours = ["tab:green" if r.met in (True, None) else "tab:red" for r in compared]
        ax.barh(names, ratios, color=colours)
        for y, row in enumerate(compared):
            if row.target is not None:
                ax.plot([row.target] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("critsec time / anchor time (log; black: target, dashed: parity)")
    if sweep:
        ax = next(panel)
        for runtime in sorted({r.name.split()[0] for r in sweep}):
            mine = [r for r in sweep if r.name.startswith(f"{runtime} ")]
            tasks = [int(r.name.split()[-2]) for r in mine]
            ax.plot(
                tasks, [r.per_op_us(r.critsec) for r in mine], "o-", label=f"{runtime}: critsec"
            )
            ax.plot(
                tasks,
                [r.per_op_us(r.baseline) for r in mine],
                "s--",
                label=f"{runtime}: {mine[0].anchor}",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], labels=["1", "2", "4", "8"])
        ax.set_xlabel("tasks")
        ax.set_ylabel("µs per locked update")
        ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def image_format(path: str | Path) -> str:
    """The format ``path``'s suffix names (none: PNG); ValueError if
    matplotlib cannot write it. Call before the work that precedes a chart."""
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    kind = Path(path).suffix.lower().lstrip(".") or "png"
    known = FigureCanvasBase.get_supported_filetypes()
    if kind not in known:
        raise ValueError(f"matplotlib writes {', '.join(sorted(known))}; not {kind!r}")
    return kind


def _save(plt: Any, figure: Any, target: Target, plotted: dict[str, Any]) -> None:
    """Save ``figure``; a PNG also keeps ``plotted`` (formats other than
    PNG take no text of our own)."""
    # Named, never guessed: a path without a suffix would get ".png" appended.
    kind = image_format(target) if isinstance(target, str | Path) else "png"
    options: dict[str, Any] = {"format": kind}
    if kind == "png":
        options["metadata"] = {PLOTTED_KEY: json.dumps(plotted)}
    figure.tight_layout()
    figure.savefig(target, **options)
    plt.close(figure)


def _heights(container: Any) -> list[float]:
    return [float(value) for value in container.datavalues]


def plot_counter(records: list[dict[str, Any]], target: Target, title: str) -> dict[str, Any]:
    """Lost updates in each trial (bars), and how often each count came up
    (a histogram), from ``critsec counter --json`` records. Returns what
    was plotted: ``trials``, ``lost_updates``, ``bin_edges``, ``counts``."""
    plt = require_matplotlib()
    from matplotlib import ticker

    if not records:
        raise ValueError("nothing to plot: no trial")
    figure, (per_trial, spread) = plt.subplots(1, 2, figsize=(10, 3.8))
    figure.suptitle(title)
    trials = [int(r["trial"]) for r in records]
    bars = per_trial.bar(
        trials, [r["lost_updates"] for r in records], color="tab:red", edgecolor="black"
    )
    per_trial.set_xlabel("trial")
    per_trial.set_ylabel("lost updates")
    per_trial.set_xticks(trials if len(trials) <= 20 else trials[:: len(trials) // 10])
    lost = [r["lost_updates"] for r in records]
    low, high = min(lost), max(lost)
    # Few distinct counts: one bar per count, centred on it; else 20 bins at most.
    bins: Any = (
        [low - 0.5 + i for i in range(high - low + 2)]
        if high - low < 20
        else min(20, max(1, len(records)))
    )
    _, edges, histogram = spread.hist(
        lost,
        bins=bins,
        color="tab:gray",
        edgecolor="black",
        hatch="//",  # readable without colour
    )
    spread.set_xlabel("lost updates in a trial")
    spread.set_ylabel("trials")
    spread.ticklabel_format(axis="x", style="plain", useOffset=False)
    # Counts are whole numbers: whole ticks, and none below 0 lost.
    per_trial.set_ylim(0, max(1, high) * 1.05)
    for axis in (per_trial.yaxis, spread.xaxis, spread.yaxis):
        axis.set_major_locator(ticker.MaxNLocator(integer=True))
    if high - low < 20:
        spread.set_xticks(range(low, high + 1, max(1, (high - low) // 10)))
    plotted = {
        "trials": [round(x) for x in _centres(bars)],
        "lost_updates": _heights(bars),
        "bin_edges": [float(edge) for edge in edges],
        "counts": [float(patch.get_height()) for patch in histogram],
    }
    _save(plt, figure, target, plotted)
    return plotted


def _centres(bars: Any) -> list[float]:
    return [patch.get_x() + patch.get_width() / 2 for patch in bars.patches]


def plot_pipeline(record: dict[str, Any], target: Target, title: str) -> dict[str, Any]:
    """The queue's length over the run (a step line, its bound dashed) and
    each consumer's items per second (bars), from a sampled ``critsec
    pipeline --json`` record. Returns what was plotted: ``seconds``,
    ``qsize``, ``consumers``, ``items_per_s``."""
    plt = require_matplotlib()
    if "qsize_samples" not in record or "items_per_s_per_consumer" not in record:
        raise ValueError("nothing to plot: the run was not sampled")
    figure, (length, rates) = plt.subplots(
        1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [2, 1]}
    )
    figure.suptitle(title)
    (line,) = length.step(
        [t for t, _ in record["qsize_samples"]],
        [n for _, n in record["qsize_samples"]],
        where="post",
        color="black",
    )
    if record.get("maxsize"):
        length.axhline(record["maxsize"], color="black", linestyle="--", linewidth=1)
        length.annotate(
            "maxsize", (0, record["maxsize"]), xytext=(2, 2), textcoords="offset points"
        )
    length.set_xlabel("seconds")
    length.set_ylabel("items in the queue (qsize)")
    highest = max([record.get("maxsize") or 0] + [n for _, n in record["qsize_samples"]])
    length.set_ylim(0, highest * 1.15 + 0.5)  # room for the bound's label
    names = [f"consumer-{c}" for c in range(len(record["items_per_s_per_consumer"]))]
    bars = rates.bar(names, record["items_per_s_per_consumer"], color="tab:blue", edgecolor="black")
    rates.set_ylabel("items taken per second")
    rates.tick_params(axis="x", labelrotation=30)
    xy = line.get_xydata()
    plotted = {
        "seconds": [float(x) for x, _ in xy],
        "qsize": [int(y) for _, y in xy],
        "consumers": names,
        "items_per_s": _heights(bars),
    }
    _save(plt, figure, target, plotted)
    return plotted
