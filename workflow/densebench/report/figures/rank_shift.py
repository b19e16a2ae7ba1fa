"""Pixel rank against object rank: does a model's Mean Dice gain separate nuclei and glands?

Per (dataset, strategy) block with object metrics, the models are ranked (1 = best, ties
averaged) once by the pixel ``Mean_Dice`` and once by the block's object metric (PQ on nuclear
datasets, object F1 on gland datasets); each model's two ranks are averaged over the blocks it
appears in. A model on the diagonal ranks alike by pixels and by objects; below it (a larger,
worse object rank: both axes put rank 1 at the top right), its pixel score flatters how well it
separates objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from densebench.report import style
from densebench.report.figures import figure_canvas, metric_label, write_notes
from densebench.report.grid import Grid
from densebench.report.object_tables import SORT_METRIC, object_kind, object_rows
from densebench.report.ranking import RANK_METRIC

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def block_ranks(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Per model: its mean pixel rank and mean object rank over the blocks with object metrics
    (columns model, pixel_rank, object_rank, blocks); ValueError if the table has none."""
    import pandas as pd

    objects = object_rows(table)
    objects = objects[
        objects["model"].isin(grid.models) & objects["strategy"].isin(grid.strategies)
    ]
    pixel = table[(table["metric"] == RANK_METRIC) & table["class"].isna()]
    rows = []
    for (dataset, strategy), part in objects.groupby(["dataset", "strategy"], sort=True):
        kind = object_kind(part["metric"].unique())
        obj = part[part["metric"] == SORT_METRIC[kind]].set_index("model")["boot_mean"]
        pix = pixel[(pixel["dataset"] == dataset) & (pixel["strategy"] == strategy)]
        pix = pix.set_index("model")["boot_mean"].reindex(obj.index)
        if len(obj) < 2 or pix.isna().any() or obj.isna().any():
            continue
        ranks = pd.DataFrame(
            {
                "model": obj.index,
                "pixel_rank": pix.rank(ascending=False, method="average").to_numpy(),
                "object_rank": obj.rank(ascending=False, method="average").to_numpy(),
            }
        )
        rows.append(ranks)
    if not rows:
        raise ValueError(
            "rank_shift: no (dataset, strategy) block with object metrics and two models or more"
        )
    ranks = pd.concat(rows).groupby("model", sort=False)
    summary = ranks.mean().assign(blocks=ranks.size()).reset_index()
    order = {m: i for i, m in enumerate(grid.models)}
    return summary.sort_values("model", key=lambda s: s.map(order)).reset_index(drop=True)


def build_rank_shift(table: pd.DataFrame, grid: Grid) -> Figure:
    """Each model's mean Mean Dice rank (x) against its mean object rank (y), diagonal drawn (a
    figure saying why where no block ranks two models)."""
    try:
        ranks = block_ranks(table, grid)
    except ValueError as reason:
        fig = figure_canvas(style.SINGLE_COLUMN_IN, 1.5)
        fig.text(0.5, 0.5, f"Pixel against object rank not applicable:\n{reason}", ha="center")
        return fig
    styles = style.model_styles(grid)
    top = float(max(ranks["pixel_rank"].max(), ranks["object_rank"].max())) + 0.5
    with style.print_style():
        fig = figure_canvas(style.SINGLE_COLUMN_IN, style.SINGLE_COLUMN_IN)
        ax = fig.subplots()
        ax.plot([0.5, top], [0.5, top], color="0.6", lw=0.6, ls="--", zorder=0)
        for row in ranks.itertuples():
            colour, marker = styles[row.model]
            ax.scatter(
                row.pixel_rank, row.object_rank, color=colour, marker=marker, s=18,
                **style.edge(grid, row.model),
            )  # fmt: skip
            ax.annotate(
                grid.name("models", row.model),
                (row.pixel_rank, row.object_rank),
                xytext=(3, 2),
                textcoords="offset points",
                fontsize=style.MIN_FONT_PT,
            )
        ax.set_xlim(top, 0.5)  # rank 1 (best) on the right and at the top
        ax.set_ylim(top, 0.5)
        ax.set_xlabel(f"Mean rank by {metric_label(RANK_METRIC)} (pixels)")
        ax.set_ylabel("Mean rank by PQ (nuclei) / object F1 (glands)")
        blocks = int(ranks["blocks"].max())
        write_notes(fig, grid, [f"ranks averaged over up to {blocks} (dataset, strategy) blocks"])
    return fig
