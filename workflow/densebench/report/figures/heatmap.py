"""The heat map (``heatmap``, one per strategy: ``heatmap_<strategy>``): models (rows, grid
order) x datasets (columns, grid order grouped nuclear, gland, tissue) of one strategy, each cell
annotated to 2 decimals on the colour-blind-safe ``cividis`` scale; missing cells are grey and
hatched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from densebench.report import style
from densebench.report.figures import (
    figure_canvas,
    headline_cells,
    metric_label,
    shown_grid,
    strategy_cells,
    write_notes,
)
from densebench.report.grid import Grid
from densebench.report.ranking import CATEGORIES, RANK_METRIC

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

HEATMAP_ROW_IN = 0.24


def category_order(grid: Grid, datasets: Sequence[str]) -> list[str]:
    """``datasets`` grouped by category (nuclear, gland, tissue, then others), grid order within."""
    rank = {c: i for i, c in enumerate(CATEGORIES)}
    index = {d: i for i, d in enumerate(datasets)}
    return sorted(
        datasets,
        key=lambda d: (rank.get(grid.categories.get(d, ""), len(rank)), index[d]),
    )


def _groups(grid: Grid, datasets: Sequence[str]) -> list[tuple[str, int, int]]:
    """(category, first column, last column) of each run of one category in ``datasets``."""
    groups: list[tuple[str, int, int]] = []
    for i, dataset in enumerate(datasets):
        category = grid.categories.get(dataset, "")
        if groups and groups[-1][0] == category:
            groups[-1] = (category, groups[-1][1], i)
        else:
            groups.append((category, i, i))
    return groups


def build_heatmap(
    table: pd.DataFrame, grid: Grid, strategy: str | None = None, metric: str = RANK_METRIC
) -> Figure:
    """Models x datasets of one strategy's ``metric`` (default: the grid's first strategy)."""
    import numpy as np

    strategy = grid.strategies[0] if strategy is None else strategy
    cells = strategy_cells(table, grid, strategy, metric, "heatmap")
    shown = shown_grid(grid, headline_cells(table, grid, metric, "heatmap"))
    datasets = category_order(grid, shown.datasets)
    values = np.full((len(shown.models), len(datasets)), np.nan)
    row = {m: i for i, m in enumerate(shown.models)}
    col = {d: j for j, d in enumerate(datasets)}
    for model, dataset, value in zip(
        cells["model"], cells["dataset"], cells["boot_mean"], strict=True
    ):
        values[row[model], col[dataset]] = value
    with style.print_style():
        import seaborn as sns

        fig = figure_canvas(
            style.DOUBLE_COLUMN_IN if len(datasets) > 6 else style.SINGLE_COLUMN_IN,
            HEATMAP_ROW_IN * len(shown.models) + 1.5,
        )
        ax = fig.subplots()
        ax.set_facecolor(style.MISSING_COLOUR)  # shows through the missing (masked) cells
        ax.patch.set_hatch(style.MISSING_HATCH)
        cbar = {"shrink": 0.9, "pad": 0.01, "aspect": 30, "label": metric_label(metric)}
        sns.heatmap(
            values,
            mask=np.isnan(values),
            cmap=style.SEQUENTIAL_CMAP,
            annot=True,
            fmt=".2f",
            annot_kws={"fontsize": style.PRINT_RC["font.size"]},
            cbar_kws=cbar,
            ax=ax,
        )
        _heatmap_axes(ax, grid, shown, datasets)
        ax.set_title(f"{metric_label(metric)}, {shown.name('strategies', strategy)}")
        missing = int(np.isnan(values).sum())
        write_notes(fig, shown, [f"hatched: no cell ({missing})"] if missing else [])
    return fig


def _heatmap_axes(ax: Axes, grid: Grid, shown: Grid, datasets: Sequence[str]) -> None:
    """Tick labels of the heat map (cell centres at i + 0.5): models, datasets, category groups on
    top with separators."""
    rows = [i + 0.5 for i in range(len(shown.models))]
    ax.set_yticks(rows, [shown.name("models", m) for m in shown.models], rotation=0)
    ax.set_xticks(
        [j + 0.5 for j in range(len(datasets))],
        [shown.name("datasets", d) for d in datasets],
        rotation=45,
        ha="right",
        rotation_mode="anchor",
    )
    ax.tick_params(length=0)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    groups = _groups(grid, datasets)
    for _, _, last in groups[:-1]:
        ax.axvline(last + 1, color="white", linewidth=2.0)
    top = ax.secondary_xaxis("top")
    top.set_xticks(
        [(first + last) / 2 + 0.5 for _, first, last in groups],
        [category.capitalize() or "Other" for category, _, _ in groups],
    )
    top.tick_params(length=0)
    top.spines["top"].set_visible(False)
