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

Only cells of the ``Grid`` (the config's datasets, models and strategies) enter. With several
sources (``merged``), each source is summarised on its own and the rows carry their ``source``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.atomic import write_table, write_text
from densebench.report.aggregate import headline_rows

if TYPE_CHECKING:
    import pandas as pd

RANK_METRIC = "Mean_Dice"
CATEGORIES: tuple[str, ...] = ("nuclear", "gland", "tissue")
"""Dataset categories of the registry, in the leaderboard's column order."""
SOTA_COLUMNS: tuple[str, ...] = (
    "source",
    "dataset",
    "dataset_name",
    "category",
    "model",
    "model_name",
    "strategy",
    "strategy_name",
    "mean",
    "ci_lower",
    "ci_upper",
)


@dataclass(frozen=True)
class Grid:
    """The names a summary covers, in order, with display names and dataset categories."""

    datasets: Sequence[str]
    models: Sequence[str]
    strategies: Sequence[str]
    categories: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grid:
        """A grid from its JSON form (the keys of this class)."""
        return cls(
            **{k: data[k] for k in ("datasets", "models", "strategies")},
            categories=data.get("categories", {}),
            names=data.get("names", {}),
        )

    def name(self, axis: str, key: str) -> str:
        """Display name of ``key`` on ``axis`` (the key itself when it has none)."""
        return self.names.get(axis, {}).get(key, key)


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


def dataset_sota(table: pd.DataFrame, grid: Grid, source: str) -> pd.DataFrame:
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
                "source": source,
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


def average_rank(table: pd.DataFrame, grid: Grid, source: str) -> pd.DataFrame:
    """Per model the mean rank overall, per strategy and per category (NaN without blocks)."""
    import pandas as pd

    ranks = model_ranks(table, grid)
    ranks = ranks.assign(category=ranks["dataset"].map(grid.categories))
    models = [m for m in grid.models if m in set(ranks["model"])]
    by_model = ranks.groupby("model")["rank"]
    sizes, means = by_model.size(), by_model.mean()
    out = pd.DataFrame(
        {
            "source": source,
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


def _md(header: list[str], rows: list[list[str]], title: str, note: str) -> str:
    """A Markdown document: title, table, note."""
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join([*lines, "", note]) + "\n"


def sota_markdown(sota: pd.DataFrame) -> str:
    """The best-per-dataset table as Markdown (mean to 4 decimals, CI to 3)."""
    header = ["Source", "Dataset", "Category", f"Best {RANK_METRIC} [95% CI]", "Model", "Strategy"]
    rows = [
        [
            r["source"],
            r["dataset_name"],
            r["category"].capitalize(),
            f"{r['mean']:.4f} [{r['ci_lower']:.3f}, {r['ci_upper']:.3f}]",
            r["model_name"],
            r["strategy_name"],
        ]
        for r in sota.to_dict("records")
    ]
    note = (
        f"Per dataset the highest {RANK_METRIC} mean over every strategy and model "
        "(ties: the first in the config's strategy, then model order)."
    )
    return _md(header, rows, f"Best {RANK_METRIC} per dataset", note)


def rank_markdown(ranks: pd.DataFrame, grid: Grid) -> str:
    """The average-rank leaderboard as Markdown (2 decimals)."""
    keys = rank_columns(grid)
    header = [
        "Source",
        "#",
        "Model",
        "Overall",
        *(grid.name("strategies", s) for s in grid.strategies),
        *(c.capitalize() for c in CATEGORIES),
    ]
    rows = []
    for source, part in ranks.groupby("source", sort=False):
        for i, r in enumerate(part.to_dict("records"), start=1):
            rows.append([source, str(i), r["model_name"], *(_num(r[k], 2) for k in keys)])
    note = (
        f"Mean rank of each model by {RANK_METRIC} over every (dataset, strategy) comparison "
        "(rank by position, no tie handling), per strategy and per dataset category."
    )
    return _md(header, rows, "Average rank", note)


def summary_tables(
    tables: Mapping[str, pd.DataFrame], grid: Grid
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SOTA and average-rank tables of each source's tidy table, stacked in source order."""
    import pandas as pd

    sota = [dataset_sota(t, grid, s) for s, t in tables.items()]
    ranks = [average_rank(t, grid, s) for s, t in tables.items()]
    return pd.concat(sota, ignore_index=True), pd.concat(ranks, ignore_index=True)


def write_summaries(tables: Mapping[str, pd.DataFrame], grid: Grid, out_dir: Path) -> list[Path]:
    """Write ``dataset_sota`` and ``average_rank`` as CSV and Markdown; return the paths."""
    out_dir = Path(out_dir)
    sota, ranks = summary_tables(tables, grid)
    paths = {
        ext: (out_dir / f"dataset_sota.{ext}", out_dir / f"average_rank.{ext}")
        for ext in ("csv", "md")
    }
    write_table(sota, paths["csv"][0])
    write_table(ranks, paths["csv"][1])
    write_text(sota_markdown(sota), paths["md"][0])
    write_text(rank_markdown(ranks, grid), paths["md"][1])
    return [*paths["csv"], *paths["md"]]
