"""Charts of the lab's results, with matplotlib (the ``critsec[lab]`` extra).

matplotlib is imported only when a chart is drawn, and its absence is one
clear error (:class:`MissingExtra`) raised before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._bench import BenchRow

__all__ = ["MissingExtra", "plot_bench", "require_matplotlib"]


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
