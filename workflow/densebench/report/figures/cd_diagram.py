"""The critical-difference diagram (Demšar 2006, "Statistical comparisons of classifiers over
multiple data sets", JMLR 7:1-30, Fig. 1) of the Friedman test of ``densebench.report.stats``.

The models' average ranks on an axis 1..k (best on the left), the Nemenyi critical difference as
a bar above it, and each clique (models whose average ranks differ by less than CD) as a thick
bar joining them; black on white, 7 in wide. Where the test cannot run (e.g. one model) the
figure says why instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from densebench.report.formats import format_p, p_relation
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC
from densebench.report.stats import (
    ALPHA,
    FriedmanResult,
    friedman_applicable,
    friedman_test,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CD_WIDTH_IN = 7.0


def _pack(spans: Sequence[tuple[float, float]], gap: float) -> list[int]:
    """Line index of each (start, end) span, packing non-overlapping spans onto shared lines."""
    ends: list[float] = []
    lines = []
    for start, end in spans:
        for i, last in enumerate(ends):
            if start > last + gap:
                ends[i] = end
                lines.append(i)
                break
        else:
            ends.append(end)
            lines.append(len(ends) - 1)
    return lines


def cd_figure(result: FriedmanResult, grid: Grid) -> Figure:
    """Demšar's critical-difference diagram of a Friedman result (black on white, 7 in wide)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    k = result.k
    width, margin = CD_WIDTH_IN, 1.95
    left, right = margin, CD_WIDTH_IN - margin

    def x(rank: float) -> float:
        return left + (rank - 1) / max(k - 1, 1) * (right - left)

    y_axis, step = 0.95, 0.2
    spans = [
        (x(result.average_ranks[c[0]]), x(result.average_ranks[c[-1]])) for c in result.cliques
    ]
    bars = [(s, e) for s, e in spans if e > s]
    lines = _pack(bars, 0.08)
    y_cliques = [y_axis + 0.15 + i * 0.1 for i in lines]
    y_models = max(y_cliques, default=y_axis) + 0.22
    models = list(result.average_ranks)
    n_left = math.ceil(k / 2)
    height = y_models + max(n_left - 1, k - n_left - 1, 0) * step + 0.25

    fig = Figure(figsize=(width, height), dpi=150)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    line = {"color": "black", "linewidth": 1.0, "solid_capstyle": "butt"}
    ax.plot([left, right], [y_axis, y_axis], **line)
    label_every = 1 if k <= 20 else math.ceil(k / 20)
    for r in range(1, k + 1):
        ax.plot([x(r), x(r)], [y_axis, y_axis - 0.08], **line)
        if (r - 1) % label_every == 0 or r == k:
            ax.text(x(r), y_axis - 0.11, str(r), ha="center", va="bottom", fontsize=8)
    for r in np.arange(1.5, k, 1.0):
        ax.plot([x(r), x(r)], [y_axis, y_axis - 0.04], **line)
    cd_end = left + result.cd / max(k - 1, 1) * (right - left)
    ax.plot([left, cd_end], [0.45, 0.45], color="black", linewidth=1.5)
    for end in (left, cd_end):
        ax.plot([end, end], [0.40, 0.50], **line)
    ax.text(
        (left + cd_end) / 2, 0.37, f"CD = {result.cd:.2f}", ha="center", va="bottom", fontsize=8
    )
    title = (
        f"{result.metric.replace('_', ' ')}: Friedman p {p_relation(format_p(result.p_value))}, "
        f"N = {result.n_blocks} blocks, Nemenyi alpha = {result.alpha:g}"
    )
    ax.text(width / 2, 0.08, title, ha="center", va="top", fontsize=8)
    for (start, end), y in zip(bars, y_cliques, strict=True):
        ax.plot([start - 0.03, end + 0.03], [y, y], color="black", linewidth=3.0)
    for i, model in enumerate(models):
        rank = result.average_ranks[model]
        on_left = i < n_left
        y = y_models + (i if on_left else k - 1 - i) * step
        edge = left - 0.12 if on_left else right + 0.12
        ax.plot([x(rank), x(rank), edge], [y_axis, y, y], color="0.25", linewidth=0.8)
        ax.text(
            edge - 0.05 if on_left else edge + 0.05,
            y,
            f"{grid.name('models', model)} ({rank:.2f})",
            ha="right" if on_left else "left",
            va="center",
            fontsize=8,
            gid=f"model:{model}",
        )
    return fig


def build_cd_diagram(
    table: pd.DataFrame, grid: Grid, alpha: float = ALPHA, metric: str = RANK_METRIC
) -> Figure:
    """The critical-difference diagram of the Friedman test on the table (a figure saying why
    where the test cannot run)."""
    reason = friedman_applicable(table, grid, metric)
    if reason is not None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(CD_WIDTH_IN, 1.5))
        fig.text(0.5, 0.5, f"Critical-difference diagram not applicable:\n{reason}", ha="center")
        return fig
    return cd_figure(friedman_test(table, grid, alpha, metric), grid)
