"""The site's summary tables: best model per dataset and the average-rank leaderboard.

Both follow the authors' ``scripts/compute_stats.py`` (reference/protocol.md §6), on the
``Mean_Dice`` mean (``boot_mean``) of the tidy table's headline rows:

- ``dataset_sota``: per dataset the maximum over every (strategy, model) cell, visited in the
  grid's order (strategies, then models, as the config lists them); a later cell replaces the
  best only if strictly greater, so the first encountered wins a tie.
- ``model_ranks``: per (dataset, strategy) the models sorted by mean descending and ranked by
  position 1..N (no tie handling; tied models keep the grid's model order).
- ``average_rank``: the mean of a model's ranks over every block (overall), over the blocks of
  each strategy, and over the datasets of each category (nuclear, gland, tissue), unrounded.

Only cells of the ``Grid`` enter. Each row carries the ``source`` of its cell(s): in a merged
table our runs (a new model) are ranked beside the published cells by the same rules, and
their models are marked (``Grid.marked``). Every table is written as CSV (registry keys beside
display names), Markdown and LaTeX (``densebench.report.formats``).

``RANK_METRIC`` is the one definition of the metric the report ranks by; ``CATEGORIES`` the one
order of the dataset categories.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.report import formats
from densebench.report.aggregate import headline_rows
from densebench.report.grid import NAMED_COLUMNS, Grid

if TYPE_CHECKING:
    import pandas as pd

RANK_METRIC = "Mean_Dice"
"""The metric every ranking, best cell, Friedman test and default figure of the report uses."""
CATEGORIES: tuple[str, ...] = ("nuclear", "gland", "tissue")
"""Dataset categories of the registry, in the leaderboard's column order."""
SOTA_COLUMNS: tuple[str, ...] = (
    "source",
    *NAMED_COLUMNS,
    "mean",
    "ci_lower",
    "ci_upper",
)


def metric_cells(table: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> pd.DataFrame:
    """Headline rows of ``metric`` inside the grid, in grid order (strategy, model, dataset)."""
    rows = headline_rows(table)
    rows = rows[
        (rows["metric"] == metric)
        & rows["dataset"].isin(grid.datasets)
        & rows["model"].isin(grid.models)
        & rows["strategy"].isin(grid.strategies)
        & rows["boot_mean"].notna()
    ]
    order = {
        "_s": rows["strategy"].map({k: i for i, k in enumerate(grid.strategies)}),
        "_m": rows["model"].map({k: i for i, k in enumerate(grid.models)}),
        "_d": rows["dataset"].map({k: i for i, k in enumerate(grid.datasets)}),
    }
    rows = rows.assign(**order).sort_values(["_s", "_m", "_d"], kind="stable")
    return rows.drop(columns=list(order)).reset_index(drop=True)


def dataset_sota(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Best (strategy, model) per dataset by strict >, first encountered in grid order wins."""
    import pandas as pd

    best: dict[str, dict[str, Any]] = {}
    for rec in metric_cells(table, grid).to_dict("records"):
        held = best.get(rec["dataset"])
        if held is None or rec["boot_mean"] > held["boot_mean"]:
            best[rec["dataset"]] = rec
    rows = []
    for dataset in grid.datasets:
        if dataset not in best:
            continue
        rec = best[dataset]
        rows.append(
            {
                "source": rec["source"],
                "dataset": dataset,
                "dataset_name": grid.name("datasets", dataset),
                "category": grid.categories.get(dataset, ""),
                "model": rec["model"],
                "model_name": grid.name("models", rec["model"]),
                "strategy": rec["strategy"],
                "strategy_name": grid.name("strategies", rec["strategy"]),
                "mean": float(rec["boot_mean"]),
                "ci_lower": float(rec["ci_lower"]),
                "ci_upper": float(rec["ci_upper"]),
            }
        )
    sota = pd.DataFrame(rows, columns=list(SOTA_COLUMNS))
    return sota.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def model_ranks(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Rank 1..N by position of the models of each (dataset, strategy), mean descending."""
    cells = metric_cells(table, grid)
    ordered = cells.sort_values(
        ["dataset", "strategy", "boot_mean"], ascending=[True, True, False], kind="stable"
    )
    ordered = ordered.assign(rank=ordered.groupby(["dataset", "strategy"]).cumcount() + 1)
    return ordered.loc[:, ["dataset", "strategy", "model", "rank"]].reset_index(drop=True)


def rank_columns(grid: Grid) -> list[str]:
    """The average-rank columns: overall, one per strategy, one per category."""
    return ["overall", *grid.strategies, *CATEGORIES]


def average_rank(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Per model the mean rank overall, per strategy and per category (NaN without blocks)."""
    import pandas as pd

    ranks = model_ranks(table, grid)
    ranks = ranks.assign(category=ranks["dataset"].map(grid.categories))
    models = [m for m in grid.models if m in set(ranks["model"])]
    cells = metric_cells(table, grid)
    sources = cells.groupby("model")["source"].agg(lambda s: "+".join(sorted(set(s))))
    by_model = ranks.groupby("model")["rank"]
    sizes, means = by_model.size(), by_model.mean()
    out = pd.DataFrame(
        {
            "source": [sources[m] for m in models],
            "model": models,
            "model_name": [grid.name("models", m) for m in models],
            "comparisons": [int(sizes[m]) for m in models],
            "overall": [float(means[m]) for m in models],
        }
    )
    for column, key in [
        *(("strategy", s) for s in grid.strategies),
        *(("category", c) for c in CATEGORIES),
    ]:
        means = ranks[ranks[column] == key].groupby("model")["rank"].mean()
        out[key] = [float(means.get(m, math.nan)) for m in models]
    return out.sort_values("overall", kind="stable").reset_index(drop=True)


def _num(value: float, digits: int) -> str:
    """A number to ``digits`` decimals, "n/a" when missing."""
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


SOTA_NOTE = (
    f"Per dataset the highest {RANK_METRIC} mean over every strategy and model "
    "(ties: the first in the config's strategy, then model order)."
)
RANK_NOTE = (
    f"Mean rank of each model by {RANK_METRIC} over every (dataset, strategy) comparison "
    "(rank by position, no tie handling), per strategy and per dataset category; "
    "per column the best in bold, the second underlined."
)


def sota_rows(sota: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the best-per-dataset table (mean to 4 decimals, CI to 3)."""
    header = ["Dataset", "Category", f"Best {RANK_METRIC} [95% CI]", "Model", "Strategy", "Source"]
    rows = [
        [
            r["dataset_name"],
            r["category"].capitalize(),
            f"{r['mean']:.4f} [{r['ci_lower']:.3f}, {r['ci_upper']:.3f}]",
            r["model_name"],
            r["strategy_name"],
            r["source"],
        ]
        for r in sota.to_dict("records")
    ]
    return header, rows


def rank_rows(ranks: pd.DataFrame, grid: Grid, style: str) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the leaderboard (2 decimals; lowest rank per column bold, second
    underlined; ``style`` "md" or "tex")."""
    keys = rank_columns(grid)
    header = [
        "#",
        "Model",
        "Overall",
        *(grid.name("strategies", s) for s in grid.strategies),
        *(c.capitalize() for c in CATEGORIES),
    ]
    mark = formats.md_mark if style == "md" else formats.tex_mark
    marks = {k: formats.emphasis([-float(v) for v in ranks[k]]) for k in keys}
    rows = []
    for i, r in enumerate(ranks.to_dict("records")):
        name = r["model_name"] if style == "md" else formats.latex_escape(r["model_name"])
        cells = [mark(_num(r[k], 2), marks[k][i]) for k in keys]
        rows.append([str(i + 1), name, *cells])
    return header, rows


def write_summaries(table: pd.DataFrame, grid: Grid, out_dir: Path) -> list[Path]:
    """Write ``dataset_sota`` and ``average_rank`` as CSV, Markdown and LaTeX; return paths."""
    out_dir = Path(out_dir)
    paths = write_dataset_sota(table, grid, out_dir / "dataset_sota")
    return paths + write_average_rank(table, grid, out_dir / "average_rank")


def write_dataset_sota(table: pd.DataFrame, grid: Grid, stem: Path) -> list[Path]:
    """Write the best-per-dataset table as ``<stem>.csv``, ``.md`` and ``.tex``."""
    sota = dataset_sota(table, grid)
    header, rows = sota_rows(sota)
    title = f"Best {RANK_METRIC} per dataset"
    return formats.write_text_table(
        sota, header, rows, title, SOTA_NOTE, "tab:dataset-sota", Path(stem)
    )


def write_average_rank(table: pd.DataFrame, grid: Grid, stem: Path) -> list[Path]:
    """Write the average-rank leaderboard as ``<stem>.csv``, ``.md`` and ``.tex``."""
    ranks = average_rank(table, grid)
    md_header, md_rows = rank_rows(ranks, grid, "md")
    _, tex_rows = rank_rows(ranks, grid, "tex")
    return formats.write_formats(
        ranks,
        formats.markdown(md_header, md_rows, "Average rank", RANK_NOTE),
        formats.latex(md_header, tex_rows, f"Average rank. {RANK_NOTE}", "tab:average-rank"),
        Path(stem),
    )
