"""The report's figures, drawn from the tidy table of ``densebench.report.aggregate`` and a Grid.

Every figure reads the ``boot_mean`` of the headline rows (``ranking.metric_cells``: only the
grid's datasets, models and strategies, missing means dropped) and shows only the names the
table holds, in grid order (``Grid.within``). Model colours and markers come from the position
of the model in the *whole* grid (``style.model_styles``), so a model looks the same in every
figure of one grid whatever subset a table holds; strategies have fixed Okabe-Ito colours
(``style.strategy_colours``). Models from our runs in a merged table (``grid.marked``) carry a
dagger in their name, a thick black edge (hatched bars) and the note "† our runs".

The kinds (``FIGURES``; ``build_<kind>(table, grid, **options) -> Figure``):

- ``figure3`` (the paper's Figure 3): per dataset one panel (6 columns), per strategy one box of
  the models' metric (default ``Mean_Dice``), each model a point at a fixed offset in its box.
- ``figure4`` (scaling): per model with a parameter count (``grid.params_m``) its mean metric over
  all its cells of one strategy (default ``frozen``; the datasets a model has cells on, counted
  in ``scaling_points``'s ``n_datasets``) against its size on a log axis, labelled with the
  display name; the title gives Spearman's rho and its p-value (``spearman``). Models without a
  size are skipped and named in the note.
- ``heatmap`` (option ``strategy``, workflow kind ``heatmap_<strategy>``): models (rows, grid
  order) x datasets (columns, grid order grouped nuclear, gland, tissue) of one strategy, each
  cell annotated to 2 decimals on the colour-blind-safe ``cividis`` scale; missing cells are
  grey and hatched.
- ``dataset_sota``: the site's best cell per dataset (``ranking.dataset_sota``, its order, best at
  the top) as horizontal bars coloured by strategy, 95% CI whiskers, the model on the right.
- ``average_rank``: the site's overall average rank per model (``ranking.average_rank``, rank 1
  at the top) as horizontal bars in the model's colour.

``save_figure`` writes PNG and vector PDF atomically without time stamps, so the same input
gives byte-identical files. matplotlib, scipy and pandas are imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.atomic import atomic_output
from densebench.evaluate.metrics import METRICS
from densebench.report import style
from densebench.report.grid import Grid
from densebench.report.ranking import CATEGORIES, RANK_METRIC, metric_cells

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
SCALING_POINT_SIZE = 22.0
LABEL_OFFSET_PT = 4.0
HEATMAP_ROW_IN = 0.24
BAR_ROW_IN = 0.17
MIN_POINTS_FOR_RHO = 3


# --- shared helpers ----------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A matplotlib Figure (Agg backend) of the given size (inches) at the print dpi."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=style.DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _cells(table: pd.DataFrame, grid: Grid, metric: str, kind: str) -> pd.DataFrame:
    """The grid's headline cells of ``metric``; ValueError naming what is missing if none."""
    if metric not in METRICS:
        raise ValueError(f"{kind}: metric {metric!r} is not a headline metric, one of {METRICS}")
    cells = metric_cells(table, grid, metric)
    if cells.empty:
        raise ValueError(
            f"{kind}: no {metric} rows in the table for the grid's datasets {list(grid.datasets)}"
            f", models {list(grid.models)} and strategies {list(grid.strategies)}"
        )
    return cells


def _shown(grid: Grid, cells: pd.DataFrame) -> Grid:
    """The grid cut to the names ``cells`` hold (``Grid.within``), marked: the models the grid
    marks and those ``within`` marks (our runs beside published cells)."""
    cut = grid.within(cells)
    return replace(cut, marked=frozenset(m for m in cut.models if m in grid.marked | cut.marked))


def _label(metric: str) -> str:
    """A metric name for an axis label (``Mean_Dice`` -> ``Mean Dice``)."""
    return metric.replace("_", " ")


def _notes(
    fig: Figure, shown: Grid, lines: Sequence[str] = (), drawn: Sequence[str] | None = None
) -> None:
    """Write the figure's notes at its foot, with "† our runs" when a marked model is drawn
    (``drawn``: the models the figure shows, by default all of ``shown``)."""
    drawn = shown.models if drawn is None else drawn
    marked = any(m in shown.marked for m in drawn)
    text = [*lines, *([style.MARKED_NOTE] if marked else [])]
    if text:
        fig.supxlabel("; ".join(text), fontsize=style.MIN_FONT_PT, x=0.01, ha="left")


def _model_handles(grid: Grid, shown: Grid) -> list[Any]:
    """Legend handles: one marker per shown model, in its grid style."""
    from matplotlib.lines import Line2D

    styles = style.model_styles(grid)
    handles = []
    for model in shown.models:
        colour, marker = styles[model]
        edge = style.edge(shown, model)
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker=marker,
                markersize=4.5,
                markerfacecolor=colour,
                markeredgecolor=edge["edgecolor"],
                markeredgewidth=edge["linewidth"],
                label=shown.name("models", model),
            )
        )
    return handles


def _strategy_handles(grid: Grid, shown: Grid) -> list[Any]:
    """Legend handles: one patch per shown strategy, in its colour."""
    from matplotlib.patches import Patch

    colours = style.strategy_colours(grid)
    return [
        Patch(facecolor=colours[s], edgecolor="none", label=shown.name("strategies", s))
        for s in shown.strategies
    ]


# --- figure3 -----------------------------------------------------------------------------------


def _offsets(n: int) -> list[float]:
    """Fixed x offsets of ``n`` models' points inside a box (model order, centred)."""
    if n == 1:
        return [0.0]
    return [-POINT_SPREAD + 2 * POINT_SPREAD * i / (n - 1) for i in range(n)]


def _box_panel(ax: Axes, part: pd.DataFrame, grid: Grid, shown: Grid) -> None:
    """One dataset's panel: a box per strategy, the models as points at fixed offsets."""
    colours, styles = style.strategy_colours(grid), style.model_styles(grid)
    offsets = dict(zip(shown.models, _offsets(len(shown.models)), strict=True))
    positions = {s: i for i, s in enumerate(shown.strategies, start=1)}
    for strategy, pos in positions.items():
        values = part.loc[part["strategy"] == strategy, "boot_mean"].astype("float64")
        if len(values):
            box = ax.boxplot(
                [values.to_numpy()],
                positions=[pos],
                widths=0.7,
                showfliers=False,
                patch_artist=True,
                medianprops={"color": "black", "linewidth": 0.8},
            )
            box["boxes"][0].set(facecolor=colours[strategy], alpha=0.35, edgecolor="black")
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
    ax.set_xlim(0.4, len(positions) + 0.6)


def build_figure3(table: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> Figure:
    """Per dataset a panel with one box per strategy of the models' ``metric``."""
    cells = _cells(table, grid, metric, "figure3")
    shown = _shown(grid, cells)
    ncols = min(FIG3_NCOLS, len(shown.datasets))
    nrows = math.ceil(len(shown.datasets) / ncols)
    width = style.DOUBLE_COLUMN_IN if ncols > 2 else style.SINGLE_COLUMN_IN
    legend_rows = math.ceil(len(shown.models) / 6)
    with style.print_style():
        fig = _figure(width, nrows * FIG3_PANEL_HEIGHT_IN + 0.5 + 0.16 * legend_rows)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[len(shown.datasets) :]:
            fig.delaxes(ax)
        for i, (ax, dataset) in enumerate(zip(axes, shown.datasets, strict=False)):
            _box_panel(ax, cells[cells["dataset"] == dataset], grid, shown)
            ax.set_title(shown.name("datasets", dataset))
            if i % ncols == 0:
                ax.set_ylabel(_label(metric))
        fig.legend(
            handles=_model_handles(grid, shown),
            loc="outside lower center",
            ncol=min(6, len(shown.models)),
            handletextpad=0.2,
            columnspacing=0.8,
        )
        _notes(fig, shown)
    return fig


def figure3(
    table: pd.DataFrame, grid: Grid, out_png: Path, out_pdf: Path, metric: str = RANK_METRIC
) -> None:
    """Render figure3 to PNG and PDF (see ``save_figure``)."""
    save_figure(build_figure3(table, grid, metric=metric), out_png, out_pdf)


# --- figure4 -----------------------------------------------------------------------------------


def _strategy_cells(
    table: pd.DataFrame, grid: Grid, strategy: str, metric: str, kind: str
) -> pd.DataFrame:
    """The grid's cells of one strategy; ValueError if it is not in the grid or has none."""
    if strategy not in grid.strategies:
        raise ValueError(
            f"{kind}: strategy {strategy!r} is not in the grid's strategies {list(grid.strategies)}"
        )
    cells = _cells(table, grid, metric, kind)
    cells = cells[cells["strategy"] == strategy]
    if cells.empty:
        raise ValueError(f"{kind}: no {strategy} cells of {metric} in the table")
    return cells


def scaling_points(
    table: pd.DataFrame, grid: Grid, strategy: str = "frozen", metric: str = RANK_METRIC
) -> pd.DataFrame:
    """Per model with a size: params_m, its mean ``metric`` over all its ``strategy`` cells and
    their count (n_datasets), in grid order; models without ``params_m`` are left out."""
    import pandas as pd

    cells = _strategy_cells(table, grid, strategy, metric, "figure4")
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
    cells = _strategy_cells(table, grid, strategy, metric, "figure4")
    shown = _shown(grid, cells)
    skipped = [m for m in shown.models if m not in set(points["model"])]
    if points.empty:
        raise ValueError(
            f"figure4: no model with {strategy} cells has params_m (model sizes), models {skipped}"
        )
    rho, p = spearman(points)
    styles = style.model_styles(grid)
    with style.print_style():
        fig = _figure(style.DOUBLE_COLUMN_IN, 3.6)
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
            f"{_label(metric)}, {shown.name('strategies', strategy)} (mean over datasets)"
        )
        lines = [f"mean over each model's {strategy} cells"]
        if skipped:
            lines.append("no size, skipped: " + ", ".join(shown.name("models", m) for m in skipped))
        _notes(fig, shown, lines)
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


# --- heatmap -----------------------------------------------------------------------------------


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


def _ink(rgba: Sequence[float]) -> str:
    """Black or white text, whichever reads on a cell of colour ``rgba``."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def build_heatmap(
    table: pd.DataFrame, grid: Grid, strategy: str | None = None, metric: str = RANK_METRIC
) -> Figure:
    """Models x datasets of one strategy's ``metric`` (default: the grid's first strategy)."""
    import numpy as np

    strategy = grid.strategies[0] if strategy is None else strategy
    cells = _strategy_cells(table, grid, strategy, metric, "heatmap")
    shown = _shown(grid, _cells(table, grid, metric, "heatmap"))
    datasets = category_order(grid, shown.datasets)
    values = np.full((len(shown.models), len(datasets)), np.nan)
    row = {m: i for i, m in enumerate(shown.models)}
    col = {d: j for j, d in enumerate(datasets)}
    for model, dataset, value in zip(
        cells["model"], cells["dataset"], cells["boot_mean"], strict=True
    ):
        values[row[model], col[dataset]] = value
    with style.print_style():
        import matplotlib

        fig = _figure(
            style.DOUBLE_COLUMN_IN if len(datasets) > 6 else style.SINGLE_COLUMN_IN,
            HEATMAP_ROW_IN * len(shown.models) + 1.5,
        )
        ax = fig.subplots()
        ax.set_facecolor(style.MISSING_COLOUR)
        ax.patch.set_hatch(style.MISSING_HATCH)
        cmap = matplotlib.colormaps[style.SEQUENTIAL_CMAP]
        masked = np.ma.masked_invalid(values)
        image = ax.imshow(masked, cmap=cmap, aspect="auto", interpolation="nearest")
        for (i, j), value in np.ndenumerate(values):
            if not math.isnan(value):
                ink = _ink(cmap(image.norm(value)))
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=ink)
        _heatmap_axes(ax, grid, shown, datasets)
        fig.colorbar(image, ax=ax, shrink=0.9, pad=0.01, aspect=30, label=_label(metric))
        ax.set_title(f"{_label(metric)}, {shown.name('strategies', strategy)}")
        missing = int(np.isnan(values).sum())
        _notes(fig, shown, [f"hatched: no cell ({missing})"] if missing else [])
    return fig


def _heatmap_axes(ax: Axes, grid: Grid, shown: Grid, datasets: Sequence[str]) -> None:
    """Tick labels of the heat map: models, datasets, category groups on top with separators."""
    ax.set_yticks(range(len(shown.models)), [shown.name("models", m) for m in shown.models])
    ax.set_xticks(
        range(len(datasets)),
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
        ax.axvline(last + 0.5, color="white", linewidth=2.0)
    top = ax.secondary_xaxis("top")
    top.set_xticks(
        [(first + last) / 2 for _, first, last in groups],
        [category.capitalize() or "Other" for category, _, _ in groups],
    )
    top.tick_params(length=0)
    top.spines["top"].set_visible(False)


# --- bar charts --------------------------------------------------------------------------------


def _bar_figure(n: int) -> tuple[Figure, Axes]:
    """A single-column figure with one axes sized for ``n`` horizontal bars."""
    fig = _figure(style.SINGLE_COLUMN_IN, BAR_ROW_IN * n + 1.3)
    return fig, fig.subplots()


def _mark_bars(bars: Any, models: Sequence[str], shown: Grid) -> None:
    """Give the bars of marked models (our runs) a hatch and a black edge."""
    for bar, model in zip(bars, models, strict=True):
        if model in shown.marked:
            bar.set(hatch=style.MARKED_HATCH, **style.MARKED_EDGE)


def _whiskers(sota: pd.DataFrame) -> list[list[float]]:
    """Lower and upper whisker lengths of the CI around each mean (0 where the CI is missing or
    does not enclose the mean)."""
    lower = (sota["mean"] - sota["ci_lower"]).fillna(0.0).clip(lower=0.0)
    upper = (sota["ci_upper"] - sota["mean"]).fillna(0.0).clip(lower=0.0)
    return [lower.tolist(), upper.tolist()]


def build_dataset_sota(table: pd.DataFrame, grid: Grid) -> Figure:
    """The best Mean_Dice per dataset as bars in strategy colours, 95% CI, model on the right."""
    from densebench.report.ranking import dataset_sota

    shown = _shown(grid, _cells(table, grid, RANK_METRIC, "dataset_sota"))
    sota = dataset_sota(table, grid)
    colours = style.strategy_colours(grid)
    y = list(range(len(sota)))
    with style.print_style():
        fig, ax = _bar_figure(len(sota))
        bars = ax.barh(
            y,
            sota["mean"],
            height=0.7,
            color=[colours[s] for s in sota["strategy"]],
            xerr=_whiskers(sota),
            error_kw={"elinewidth": 0.6, "capsize": 1.5, "capthick": 0.6, "ecolor": "black"},
        )
        _mark_bars(bars, list(sota["model"]), shown)
        drawn = list(sota["model"])
        ax.set_yticks(y, list(sota["dataset_name"]))
        ax.set_ylim(len(sota) - 0.5, -0.5)  # the best at the top
        ax.set_xlim(0.0, max(1.0, float(sota[["mean", "ci_upper"]].max().max())))
        ax.set_xlabel(f"Best {_label(RANK_METRIC)} (95% CI)")
        right = ax.secondary_yaxis("right")
        right.set_yticks(y, [shown.name("models", m) for m in sota["model"]])
        right.tick_params(length=0)
        right.spines["right"].set_visible(False)
        fig.legend(
            handles=_strategy_handles(grid, shown),
            loc="outside upper center",
            ncol=min(3, len(shown.strategies)),
            handlelength=1.0,
            columnspacing=0.8,
        )
        _notes(fig, shown, drawn=drawn)
    return fig


def build_average_rank(table: pd.DataFrame, grid: Grid) -> Figure:
    """The overall average rank per model (1 = best, at the top) as bars in the model colours."""
    from matplotlib.ticker import MaxNLocator

    from densebench.report.ranking import average_rank

    shown = _shown(grid, _cells(table, grid, RANK_METRIC, "average_rank"))
    ranks = average_rank(table, grid)
    styles = style.model_styles(grid)
    y = list(range(len(ranks)))
    with style.print_style():
        fig, ax = _bar_figure(len(ranks))
        bars = ax.barh(
            y, ranks["overall"], height=0.7, color=[styles[m][0] for m in ranks["model"]]
        )
        _mark_bars(bars, list(ranks["model"]), shown)
        for pos, value in zip(y, ranks["overall"], strict=True):
            ax.text(value, pos, f" {value:.2f}", va="center", ha="left")
        ax.set_yticks(y, [shown.name("models", m) for m in ranks["model"]])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(len(ranks) - 0.5, -0.5)  # rank 1 at the top
        ax.set_xlim(0.0, float(ranks["overall"].max()) * 1.2 + 0.5)
        ax.set_xlabel(f"Average rank by {_label(RANK_METRIC)} (1 = best)")
        counts = sorted(set(ranks["comparisons"]))
        span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        _notes(fig, shown, [f"over {span} (dataset, strategy) comparisons per model"])
    return fig


# --- registry and files ------------------------------------------------------------------------

Builder = Callable[..., "Figure"]
FIGURES: dict[str, Builder] = {
    "figure3": build_figure3,
    "figure4": build_figure4,
    "heatmap": build_heatmap,
    "dataset_sota": build_dataset_sota,
    "average_rank": build_average_rank,
}
"""Figure kind -> builder ``(table, grid, **options) -> Figure``."""


def figure_kinds(grid: Grid) -> list[str]:
    """The workflow's figure names of a grid: the kinds, heat maps as ``heatmap_<strategy>``."""
    heatmaps = [f"heatmap_{s}" for s in grid.strategies]
    return ["figure3", "figure4", *heatmaps, "dataset_sota", "average_rank"]


def resolve(name: str) -> tuple[Builder, dict[str, Any]]:
    """The builder and options of a workflow figure name (``heatmap_lora`` -> heatmap, lora)."""
    if name in FIGURES:
        return FIGURES[name], {}
    kind, _, strategy = name.partition("_")
    if kind == "heatmap" and strategy:
        return build_heatmap, {"strategy": strategy}
    raise ValueError(f"unknown figure {name!r}: one of {[*FIGURES, 'heatmap_<strategy>']}")


def save_figure(fig: Figure, png: Path, pdf: Path) -> None:
    """Write ``fig`` as PNG and vector PDF, atomically and without time stamps."""
    with style.print_style():
        with atomic_output(Path(png)) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": None})
        with atomic_output(Path(pdf)) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})


def render(
    name: str, table: pd.DataFrame, grid: Grid, png: Path, pdf: Path, **options: Any
) -> None:
    """Build the figure ``name`` (a kind or ``heatmap_<strategy>``) and save it."""
    builder, defaults = resolve(name)
    save_figure(builder(table, grid, **{**defaults, **options}), png, pdf)
