"""Figure 3 of the report: per dataset, one box per strategy of a headline metric across models.

Reads only the tidy table of ``densebench.report.aggregate`` (its ``headline_rows``): each box
holds the ``boot_mean`` of every model, with the models as jittered points. Rendered to PNG and
PDF without time stamps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.atomic import atomic_output
from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import headline_rows
from densebench.report.tables import RANK_METRIC, DisplayNames, display

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

FIG3_NCOLS = 6
FIG3_SIZE_IN: tuple[float, float] = (18.0, 10.0)
FIG3_DPI = 100
JITTER_SEED = 0
JITTER_WIDTH = 0.15


def _ordered(values: Sequence[str], order: Sequence[str] | None) -> list[str]:
    """Return unique ``values`` in ``order`` (unknown ones appended in first-seen order)."""
    unique = list(dict.fromkeys(values))
    if order is None:
        return unique
    head = [v for v in order if v in unique]
    return head + [v for v in unique if v not in head]


def build_figure3(
    table: pd.DataFrame,
    metric: str = RANK_METRIC,
    strategy_order: Sequence[str] | None = None,
    display_names: DisplayNames | None = None,
    dataset_order: Sequence[str] | None = None,
) -> Figure:
    """Build the Figure 3 analogue: per dataset, one box per strategy across models."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if metric not in METRICS:
        raise ValueError(
            f"no rows for metric {metric!r}: Figure 3 plots a headline metric, one of "
            f"{list(METRICS)}"
        )
    table = headline_rows(table)
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no rows for metric {metric!r} in the table")
    datasets = _ordered([str(d) for d in rows["dataset"]], dataset_order)
    strategies = _ordered([str(s) for s in rows["strategy"]], strategy_order)
    ncols = min(FIG3_NCOLS, len(datasets))
    nrows = math.ceil(len(datasets) / ncols)
    fig = Figure(figsize=FIG3_SIZE_IN, dpi=FIG3_DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=False, squeeze=False).ravel()
    for ax in axes[len(datasets) :]:
        fig.delaxes(ax)
    labels = [display(display_names, "strategies", s) for s in strategies]
    for ax, dataset in zip(axes, datasets, strict=False):
        part = rows[rows["dataset"] == dataset]
        groups = [
            part.loc[part["strategy"] == s, "boot_mean"].astype("float64").dropna().to_numpy()
            for s in strategies
        ]
        positions = np.arange(1, len(strategies) + 1)
        ax.boxplot(groups, positions=positions, widths=0.6, showfliers=False)
        rng = np.random.default_rng(JITTER_SEED)
        for pos, values in zip(positions, groups, strict=True):
            jitter = rng.uniform(-JITTER_WIDTH, JITTER_WIDTH, size=len(values))
            ax.scatter(pos + jitter, values, s=10, alpha=0.7, zorder=3)
        ax.set_xticks(positions, labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(display(display_names, "datasets", dataset))
        ax.set_ylabel(metric.replace("_", " "))
    return fig


def figure3(
    table: pd.DataFrame,
    out_png: Path,
    out_pdf: Path,
    metric: str = RANK_METRIC,
    strategy_order: Sequence[str] | None = None,
    display_names: DisplayNames | None = None,
    dataset_order: Sequence[str] | None = None,
) -> None:
    """Render the Figure 3 analogue to PNG and PDF (atomic, metadata-free where possible)."""
    fig = build_figure3(table, metric, strategy_order, display_names, dataset_order)
    with atomic_output(Path(out_png)) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    with atomic_output(Path(out_pdf)) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
