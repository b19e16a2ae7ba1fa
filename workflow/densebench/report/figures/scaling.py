"""Figure 4 (scaling): per model with a parameter count (``grid.params_m``) its mean metric over
all its cells of one strategy (default ``frozen``; the datasets a model has cells on, counted in
``scaling_points``'s ``n_datasets``) against its size on a log axis, labelled with the display
name; the title gives Spearman's rho and its p-value (``spearman``). Models without a size are
skipped and named in the note."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from densebench.report import style
from densebench.report.figures import (
    figure_canvas,
    metric_label,
    shown_grid,
    strategy_cells,
    write_notes,
)
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SCALING_POINT_SIZE = 22.0
LABEL_OFFSET_PT = 4.0
MIN_POINTS_FOR_RHO = 3


def scaling_points(
    table: pd.DataFrame, grid: Grid, strategy: str = "frozen", metric: str = RANK_METRIC
) -> pd.DataFrame:
    """Per model with a size: params_m, its mean ``metric`` over all its ``strategy`` cells and
    their count (n_datasets), in grid order; models without ``params_m`` are left out."""
    import pandas as pd

    cells = strategy_cells(table, grid, strategy, metric, "figure4")
    by_model = cells.groupby("model")["boot_mean"]
    means, counts = by_model.mean(), by_model.size()
    models = [m for m in grid.models if m in means.index and m in grid.params_m]
    return pd.DataFrame(
        {
            "model": models,
            "params_m": [float(grid.params_m[m]) for m in models],
            "mean": [float(means[m]) for m in models],
            "n_datasets": [int(counts[m]) for m in models],
        },
        columns=["model", "params_m", "mean", "n_datasets"],
    )


def spearman(points: pd.DataFrame) -> tuple[float, float]:
    """Spearman's rho of params_m vs mean and its two-sided p-value; NaN for fewer than 3
    points or a constant column."""
    from scipy.stats import spearmanr

    if len(points) < MIN_POINTS_FOR_RHO or min(points[["params_m", "mean"]].nunique()) < 2:
        return math.nan, math.nan
    result = spearmanr(points["params_m"], points["mean"])
    return float(result.statistic), float(result.pvalue)


Box = tuple[float, float, float, float]
"""A label or marker box in points: x0, x1, y centre, height."""


def _overlap(a: Box, b: Box, ya: float, yb: float) -> float:
    """How far boxes ``a`` and ``b`` (centred at ``ya``, ``yb``) overlap vertically, if they
    overlap horizontally; 0 otherwise."""
    if a[0] < b[1] and b[0] < a[1]:
        return max(0.0, (a[3] + b[3]) / 2 - abs(ya - yb))
    return 0.0


def _spread_labels(
    boxes: Sequence[Box],
    obstacles: Sequence[Box],
    bottom: float,
    top: float,
    rounds: int = 400,
) -> list[float]:
    """Vertical shifts that keep label ``boxes`` apart from each other and from the fixed
    ``obstacles`` (the other labels' markers): each overlapping pair of labels is pushed apart
    by half the overlap, a label off an obstacle by all of it, every label kept in
    [bottom, top]."""
    ys = [box[2] for box in boxes]
    for _ in range(rounds):
        moved = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                gap = _overlap(boxes[i], boxes[j], ys[i], ys[j])
                if gap > 1e-3:
                    up = 1.0 if (ys[j], j) > (ys[i], i) else -1.0
                    ys[i], ys[j], moved = ys[i] - up * gap / 2, ys[j] + up * gap / 2, True
            for k, obstacle in enumerate(obstacles):
                gap = _overlap(boxes[i], obstacle, ys[i], obstacle[2]) if k != i else 0.0
                if gap > 1e-3:
                    ys[i] += gap if ys[i] >= obstacle[2] else -gap
                    moved = True
        ys = [
            min(max(y, bottom + b[3] / 2), top - b[3] / 2) for y, b in zip(ys, boxes, strict=True)
        ]
        if not moved:
            break
    return [y - box[2] for y, box in zip(ys, boxes, strict=True)]


def _scaling_limits(points: pd.DataFrame) -> tuple[tuple[float, float], tuple[float, float]]:
    """Log-x and y limits with margins around the points (room for labels on the right)."""
    lo, hi = math.log10(points["params_m"].min()), math.log10(points["params_m"].max())
    pad = max(0.15, 0.1 * (hi - lo))
    ylo, yhi = float(points["mean"].min()), float(points["mean"].max())
    ypad = max(0.01, 0.08 * (yhi - ylo))
    return (10 ** (lo - pad), 10 ** (hi + 2.5 * pad)), (ylo - ypad, yhi + ypad)


def _plain_log_formatter(**kwargs: Any) -> Any:
    """matplotlib's log-axis formatter (which ticks to label) writing plain numbers (``0.06``,
    ``100``) instead of ``6e-02``."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
            return f"{x:g}"

    return Plain(minor_thresholds=(1, 0.5), **kwargs)


def build_figure4(
    table: pd.DataFrame, grid: Grid, strategy: str = "frozen", metric: str = RANK_METRIC
) -> Figure:
    """Model size (log) vs the model's mean ``metric`` over its ``strategy`` cells, Spearman rho."""
    points = scaling_points(table, grid, strategy, metric)
    cells = strategy_cells(table, grid, strategy, metric, "figure4")
    shown = shown_grid(grid, cells)
    skipped = [m for m in shown.models if m not in set(points["model"])]
    if points.empty:
        raise ValueError(
            f"figure4: no model with {strategy} cells has params_m (model sizes), models {skipped}"
        )
    rho, p = spearman(points)
    styles = style.model_styles(grid)
    with style.print_style():
        fig = figure_canvas(style.DOUBLE_COLUMN_IN, 3.6)
        ax = fig.subplots()
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_plain_log_formatter())
        ax.xaxis.set_minor_formatter(_plain_log_formatter(labelOnlyBase=False))
        xlim, ylim = _scaling_limits(points)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        for rec in points.itertuples():
            colour, marker = styles[rec.model]
            edge = style.edge(shown, rec.model)
            ax.scatter(
                [rec.params_m],
                [rec.mean],
                s=SCALING_POINT_SIZE,
                c=[colour],
                marker=marker,
                edgecolors=edge["edgecolor"],
                linewidths=edge["linewidth"],
                zorder=3,
            )
        rho_text = "n/a" if math.isnan(rho) else f"{rho:.2f}"
        p_text = "n/a" if math.isnan(p) else f"{p:.2g}"
        ax.set_title(f"Spearman \u03c1 = {rho_text}, p = {p_text} ({len(points)} models)")
        ax.set_xlabel("Parameters (millions, log scale)")
        ax.set_ylabel(
            f"{metric_label(metric)}, {shown.name('strategies', strategy)} (mean over datasets)"
        )
        lines = [f"mean over each model's {strategy} cells"]
        if skipped:
            lines.append("no size, skipped: " + ", ".join(shown.name("models", m) for m in skipped))
        write_notes(fig, shown, lines)
        _label_points(ax, points, shown)
    return fig


def _label_points(ax: Axes, points: pd.DataFrame, shown: Grid) -> None:
    """Label each point with its model's display name, beside it, spread not to overlap.

    Runs the figure's layout once to know the axes' size, places the labels inside the axes
    (left of a point where the right has no room, a leader line when moved) and then fixes the
    layout."""
    fig = ax.get_figure()
    fig.get_layout_engine().execute(fig)
    renderer = fig.canvas.get_renderer()
    scale = 72.0 / fig.dpi  # display pixels -> points
    frame = ax.get_window_extent(renderer)
    names = [shown.name("models", m) for m in points["model"]]
    xy = list(zip(points["params_m"], points["mean"], strict=True))
    boxes, sides, anchors = [], [], []
    for name, (x, y) in zip(names, xy, strict=True):
        px, py = (float(v) * scale for v in ax.transData.transform((x, y)))
        anchors.append((px, py))
        probe = ax.text(x, y, name)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        width, height = extent.width * scale, extent.height * scale
        side = -1.0 if px + LABEL_OFFSET_PT + width > frame.x1 * scale else 1.0
        x0 = px + side * LABEL_OFFSET_PT - (width if side < 0 else 0.0)
        boxes.append((x0, x0 + width, py, height))
        sides.append(side)
    marker = math.sqrt(SCALING_POINT_SIZE) + 1.0
    obstacles = [(x0 - marker / 2, x0 + marker / 2, y, marker) for x0, y in anchors]
    shifts = _spread_labels(boxes, obstacles, frame.y0 * scale, frame.y1 * scale)
    leader = {"arrowstyle": "-", "linewidth": 0.4, "color": "0.4", "shrinkA": 0, "shrinkB": 2}
    for name, point, side, dy in zip(names, xy, sides, shifts, strict=True):
        ax.annotate(
            name,
            point,
            xytext=(side * LABEL_OFFSET_PT, dy),
            textcoords="offset points",
            va="center",
            ha="left" if side > 0 else "right",
            arrowprops=leader if abs(dy) > style.MIN_FONT_PT / 2 else None,
        )
    fig.set_layout_engine("none")
