"""The leaderboard's bar charts.

- ``dataset_sota``: the site's best cell per dataset (``ranking.dataset_sota``, its order, best at
  the top) as horizontal bars coloured by strategy, 95% CI whiskers, the model on the right.
- ``average_rank``: the site's overall average rank per model (``ranking.average_rank``, rank 1
  at the top) as horizontal bars in the model's colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from densebench.report import style
from densebench.report.figures import (
    figure_canvas,
    headline_cells,
    metric_label,
    shown_grid,
    strategy_handles,
    write_notes,
)
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BAR_ROW_IN = 0.17


def _bar_figure(n: int) -> tuple[Figure, Axes]:
    """A single-column figure with one axes sized for ``n`` horizontal bars."""
    fig = figure_canvas(style.SINGLE_COLUMN_IN, BAR_ROW_IN * n + 1.3)
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

    shown = shown_grid(grid, headline_cells(table, grid, RANK_METRIC, "dataset_sota"))
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
        ax.set_xlabel(f"Best {metric_label(RANK_METRIC)} (95% CI)")
        right = ax.secondary_yaxis("right")
        right.set_yticks(y, [shown.name("models", m) for m in sota["model"]])
        right.tick_params(length=0)
        right.spines["right"].set_visible(False)
        fig.legend(
            handles=strategy_handles(grid, shown),
            loc="outside upper center",
            ncol=min(3, len(shown.strategies)),
            handlelength=1.0,
            columnspacing=0.8,
        )
        write_notes(fig, shown, drawn=drawn)
    return fig


def build_average_rank(table: pd.DataFrame, grid: Grid) -> Figure:
    """The overall average rank per model (1 = best, at the top) as bars in the model colours."""
    from matplotlib.ticker import MaxNLocator

    from densebench.report.ranking import average_rank

    shown = shown_grid(grid, headline_cells(table, grid, RANK_METRIC, "average_rank"))
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
        ax.set_xlabel(f"Average rank by {metric_label(RANK_METRIC)} (1 = best)")
        counts = sorted(set(ranks["comparisons"]))
        span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        write_notes(fig, shown, [f"over {span} (dataset, strategy) comparisons per model"])
    return fig
