"""Figure 3 of the paper: per dataset one panel (6 columns), per strategy one box of the
models' metric (default ``Mean_Dice``), each model a point at a fixed offset in its box."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

from densebench.report import style
from densebench.report.figures import (
    figure_canvas,
    headline_cells,
    metric_label,
    model_handles,
    shown_grid,
    write_notes,
)
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIG3_NCOLS = 6
FIG3_PANEL_HEIGHT_IN = 1.7
POINT_SPREAD = 0.25
"""Half the width over which figure3 spreads the models' points inside a box."""
POINT_SIZE = 9.0
"""Marker area (pt^2) of the models' points in figure3."""


def _offsets(n: int) -> list[float]:
    """Fixed x offsets of ``n`` models' points inside a box (model order, centred)."""
    if n == 1:
        return [0.0]
    return [-POINT_SPREAD + 2 * POINT_SPREAD * i / (n - 1) for i in range(n)]


def _box_panel(ax: Axes, part: pd.DataFrame, grid: Grid, shown: Grid) -> None:
    """One dataset's panel: a box per strategy, the models as points at fixed offsets."""
    colours, styles = style.strategy_colours(grid), style.model_styles(grid)
    offsets = dict(zip(shown.models, _offsets(len(shown.models)), strict=True))
    import seaborn as sns

    positions = {s: i for i, s in enumerate(shown.strategies)}  # seaborn's category positions
    with warnings.catch_warnings():  # seaborn 0.13.2 passes bxp's `vert` (matplotlib >= 3.11)
        warnings.filterwarnings("ignore", "vert: bool was deprecated", DeprecationWarning)
        sns.boxplot(
            part.astype({"boot_mean": "float64"}),
            x="strategy",
            y="boot_mean",
            order=list(shown.strategies),
            hue="strategy",
            hue_order=list(shown.strategies),
            palette={s: colours[s] for s in shown.strategies},
            saturation=1.0,
            width=0.7,
            showfliers=False,
            linecolor="black",
            linewidth=0.8,
            boxprops={"alpha": 0.35},
            medianprops={"color": "black", "linewidth": 0.8},
            legend=False,
            ax=ax,
        )
    for model, rows in part.groupby("model", sort=False):
        colour, marker = styles[model]
        edge = style.edge(shown, model)
        ax.scatter(
            rows["strategy"].map(positions) + offsets[model],
            rows["boot_mean"].astype("float64"),
            s=POINT_SIZE,
            c=[colour],
            marker=marker,
            edgecolors=edge["edgecolor"],
            linewidths=edge["linewidth"],
            zorder=3,
        )
    labels = [shown.name("strategies", s) for s in shown.strategies]
    ax.set_xticks(list(positions.values()), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(positions) - 0.4)
    ax.set(xlabel="", ylabel="")


def build_figure3(table: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> Figure:
    """Per dataset a panel with one box per strategy of the models' ``metric``."""
    cells = headline_cells(table, grid, metric, "figure3")
    shown = shown_grid(grid, cells)
    ncols = min(FIG3_NCOLS, len(shown.datasets))
    nrows = math.ceil(len(shown.datasets) / ncols)
    width = style.DOUBLE_COLUMN_IN if ncols > 2 else style.SINGLE_COLUMN_IN
    legend_rows = math.ceil(len(shown.models) / 6)
    with style.print_style():
        fig = figure_canvas(width, nrows * FIG3_PANEL_HEIGHT_IN + 0.5 + 0.16 * legend_rows)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[len(shown.datasets) :]:
            fig.delaxes(ax)
        for i, (ax, dataset) in enumerate(zip(axes, shown.datasets, strict=False)):
            _box_panel(ax, cells[cells["dataset"] == dataset], grid, shown)
            ax.set_title(shown.name("datasets", dataset))
            if i % ncols == 0:
                ax.set_ylabel(metric_label(metric))
        fig.legend(
            handles=model_handles(grid, shown),
            loc="outside lower center",
            ncol=min(6, len(shown.models)),
            handletextpad=0.2,
            columnspacing=0.8,
        )
        write_notes(fig, shown)
    return fig
