"""The leaderboard's rank uncertainty (``rank_uncertainty``): per model, best at the top, its
average rank as a point in the model's colour with its 95% bootstrap interval as a bar, and its
probability of ranking first written on the right; the notes say which bootstrap (image-level
or dataset-level) and over how many replicates.

The figure is drawn from the rank-uncertainty table (``tables/rank_uncertainty.csv``, the
columns of ``densebench.report.rank_uncertainty.UNCERTAINTY_COLUMNS``), which the figure rule
passes; without it the table is computed here from the source's table alone, which allows only
the dataset-level scheme (the notes say which scheme was used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from densebench.report import style
from densebench.report.figures import (
    figure_canvas,
    headline_cells,
    metric_label,
    shown_grid,
    write_notes,
)
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

ROW_IN = 0.19


def _scheme_line(frame: pd.DataFrame) -> str:
    """The notes' line on the bootstrap: its scheme, replicates and resampling unit."""
    first = frame.iloc[0]
    unit = (
        "each dataset's test images, one draw for all its runs"
        if first["scheme"] == "image"
        else "whole datasets, each with all its strategy blocks"
    )
    return f"{first['scheme']}-level bootstrap, {int(first['replicates'])} replicates:\n{unit}"


def build_rank_uncertainty(
    table: pd.DataFrame,
    grid: Grid,
    rank_uncertainty: pd.DataFrame | None = None,
    replicates: int = 1000,
    seed: int = 42,
) -> Figure:
    """Average rank per model (1 = best, at the top) with its 95% interval and P(first), from
    the rank-uncertainty table (computed dataset-level from ``table`` when not given)."""
    from matplotlib.ticker import MaxNLocator

    from densebench.report.rank_uncertainty import rank_uncertainty as compute

    shown = shown_grid(grid, headline_cells(table, grid, RANK_METRIC, "rank_uncertainty"))
    frame = rank_uncertainty
    if frame is None:
        frame = compute(table, grid, replicates, seed, scheme="dataset").frame
    frame = frame.sort_values(["average_rank", "position"], kind="stable").reset_index(drop=True)
    models = [str(m) for m in frame["model"]]
    styles = style.model_styles(grid)
    y = list(range(len(frame)))
    upper = float(frame[["average_rank", "rank_upper"]].max().max())
    with style.print_style():
        fig = figure_canvas(style.SINGLE_COLUMN_IN, ROW_IN * len(frame) + 1.4)
        ax = fig.subplots()
        for pos, r in zip(y, frame.to_dict("records"), strict=True):
            colour, marker = styles.get(str(r["model"]), ("black", "o"))
            edge = style.edge(shown, str(r["model"]))
            ax.plot([r["rank_lower"], r["rank_upper"]], [pos, pos], color=colour, linewidth=2.0)
            ax.plot(
                r["average_rank"],
                pos,
                linestyle="none",
                marker=marker,
                markersize=5.0,
                markerfacecolor=colour,
                markeredgecolor="black" if edge["edgecolor"] == "black" else "0.2",
                markeredgewidth=edge["linewidth"] if edge["edgecolor"] == "black" else 0.5,
            )
            ax.text(upper + 0.6, pos, f"{float(r['p_first']):.2f}", va="center", ha="left")
        ax.set_yticks(y, [shown.name("models", m) if m in shown.models else m for m in models])
        ax.set_ylim(len(frame) - 0.5, -0.5)  # the best at the top
        ax.set_xlim(0.5, upper + 2.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.text(upper + 0.6, -0.9, "P(first)", va="bottom", ha="left")
        ax.set_xlabel(f"Average rank by {metric_label(RANK_METRIC)}\n(1 = best; 95% interval)")
        write_notes(fig, shown, [_scheme_line(frame)], drawn=models)
    return fig
