"""The report's figures, drawn from the tidy table of ``densebench.report.aggregate`` and a Grid.

Every figure reads the ``boot_mean`` of the headline rows (``ranking.metric_cells``: only the
grid's datasets, models and strategies, missing means dropped) and shows only the names the
table holds, in grid order (``Grid.within``). Model colours and markers come from the position
of the model in the *whole* grid (``style.model_styles``), so a model looks the same in every
figure of one grid whatever subset a table holds; strategies have fixed Okabe-Ito colours
(``style.strategy_colours``). Models from our runs in a merged table (``grid.marked``) carry a
dagger in their name, a thick black edge (hatched bars) and the note "† our runs".

The kinds, one module each (listed once, with options and captions, in
``densebench.report.products``; ``build_<kind>(table, grid, **options) -> Figure``):
``boxes`` (``figure3``, the paper's Figure 3), ``scaling`` (``figure4``), ``heatmap``
(``heatmap``, one per strategy), ``bars`` (``dataset_sota``, ``average_rank``) and
``cd_diagram`` (``critical_difference``). This package holds what they share: the print
canvas, the headline cells, legends and notes.

``save_figure`` writes PNG and vector PDF atomically without time stamps, so the same input
gives byte-identical files. matplotlib, seaborn, scipy and pandas are imported inside the
functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.atomic import atomic_output
from densebench.evaluate.metrics import METRICS
from densebench.report import style
from densebench.report.grid import Grid
from densebench.report.ranking import metric_cells

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


# --- shared helpers ----------------------------------------------------------------------------


def figure_canvas(width: float, height: float) -> Figure:
    """A matplotlib Figure (Agg backend) of the given size (inches) at the print dpi."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=style.DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def headline_cells(table: pd.DataFrame, grid: Grid, metric: str, kind: str) -> pd.DataFrame:
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


def strategy_cells(
    table: pd.DataFrame, grid: Grid, strategy: str, metric: str, kind: str
) -> pd.DataFrame:
    """The grid's cells of one strategy; ValueError if it is not in the grid or has none."""
    if strategy not in grid.strategies:
        raise ValueError(
            f"{kind}: strategy {strategy!r} is not in the grid's strategies {list(grid.strategies)}"
        )
    cells = headline_cells(table, grid, metric, kind)
    cells = cells[cells["strategy"] == strategy]
    if cells.empty:
        raise ValueError(f"{kind}: no {strategy} cells of {metric} in the table")
    return cells


def shown_grid(grid: Grid, cells: pd.DataFrame) -> Grid:
    """The grid cut to the names ``cells`` hold (``Grid.within``), marked: the models the grid
    marks and those ``within`` marks (our runs beside published cells)."""
    cut = grid.within(cells)
    return replace(cut, marked=frozenset(m for m in cut.models if m in grid.marked | cut.marked))


def metric_label(metric: str) -> str:
    """A metric name for an axis label (``Mean_Dice`` -> ``Mean Dice``)."""
    return metric.replace("_", " ")


def write_notes(
    fig: Figure, shown: Grid, lines: Sequence[str] = (), drawn: Sequence[str] | None = None
) -> None:
    """Write the figure's notes at its foot, with "† our runs" when a marked model is drawn
    (``drawn``: the models the figure shows, by default all of ``shown``)."""
    drawn = shown.models if drawn is None else drawn
    marked = any(m in shown.marked for m in drawn)
    text = [*lines, *([style.MARKED_NOTE] if marked else [])]
    if text:
        fig.supxlabel("; ".join(text), fontsize=style.MIN_FONT_PT, x=0.01, ha="left")


def model_handles(grid: Grid, shown: Grid) -> list[Any]:
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


def strategy_handles(grid: Grid, shown: Grid) -> list[Any]:
    """Legend handles: one patch per shown strategy, in its colour."""
    from matplotlib.patches import Patch

    colours = style.strategy_colours(grid)
    return [
        Patch(facecolor=colours[s], edgecolor="none", label=shown.name("strategies", s))
        for s in shown.strategies
    ]


def save_figure(fig: Figure, png: Path, pdf: Path) -> None:
    """Write ``fig`` as PNG and vector PDF, atomically and without time stamps."""
    with style.print_style():
        with atomic_output(Path(png)) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": None})
        with atomic_output(Path(pdf)) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
