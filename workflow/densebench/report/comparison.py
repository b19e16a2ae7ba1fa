"""The comparison of the reproduction report: every cell's published result beside ours
(reference/protocol.md §6); ``densebench.report.reproduction`` renders it as pages.

For each cell (dataset, model, strategy) and each of the 8 headline ``METRICS`` (``VIEW_METRIC``,
Mean_Dice, is the default view), ``compare`` sets the published mean [ci_lower, ci_upper] beside
our point value and bootstrap mean [ci_lower, ci_upper] (tidy rows of
``densebench.report.aggregate`` and ``densebench.report.published``), with

- ``delta`` = our ``boot_mean`` - the published mean;
- ``published_in_ci``: the published mean lies in our 95% interval (bounds included);
- ``cis_overlap``: the two intervals share a point (bounds included);
- ``status``: "agrees" (published mean in our CI), "overlaps" (intervals overlap, published mean
  outside ours), "differs" (no overlap), "not run" (a published cell without a reproduced one),
  "not published" (our cell without a published one: a new model, the demo's synthetic datasets).
  ``published_in_ci`` and ``cis_overlap`` are NA unless both sources hold the cell.
- ``n_images``: the test images of our cell (NA without one); ``unreliable``: fewer than 10
  (``densebench.report.reliability``), so our interval, and the status it decides, are not to
  be trusted (the report marks such cells with a double dagger).

Which cells: the union of both sources' cells, none hidden, restricted on each axis to the grid's
names when the grid lists that axis (an axis the grid leaves empty takes every name either
source holds). Names outside a listed axis are left out (the report covers its grid); their
number per source is kept in ``comparison.attrs["outside_grid"]`` and stated by the report. A
source holds a (cell, metric) when it has a headline row with a finite mean and interval; a row
with a missing value counts as absent. Rows are in grid order (dataset, strategy, model; names
outside the grid's order sorted after), then metric with ``VIEW_METRIC`` first. Either source may
be empty: the report still renders and says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import KEY_COLUMNS, headline_rows
from densebench.report.grid import AXES, COLUMN, NAMED_COLUMNS, Grid
from densebench.report.ranking import RANK_METRIC
from densebench.report.reliability import is_unreliable

if TYPE_CHECKING:
    import pandas as pd

VIEW_METRIC = RANK_METRIC
"""The metric the report shows by default (the report's rank metric)."""
METRIC_ORDER: tuple[str, ...] = (VIEW_METRIC, *(m for m in METRICS if m != VIEW_METRIC))
"""The comparison's metric order: the default view first, then the published order."""
STATUSES: tuple[str, ...] = ("agrees", "overlaps", "differs", "not run", "not published")
COMPARED: tuple[str, ...] = STATUSES[:3]
"""The statuses of cells that both sources hold."""
COMPARISON_COLUMNS: tuple[str, ...] = (
    *NAMED_COLUMNS,
    "metric",
    "published_mean",
    "published_ci_lower",
    "published_ci_upper",
    "point",
    "boot_mean",
    "ci_lower",
    "ci_upper",
    "delta",
    "published_in_ci",
    "cis_overlap",
    "status",
    "n_images",
    "unreliable",
)
_OURS = ("point", "boot_mean", "ci_lower", "ci_upper")
_THEIRS = ("published_mean", "published_ci_lower", "published_ci_upper")


def count_column(status: str) -> str:
    """The summary column counting a status ("not run" -> "not_run")."""
    return status.replace(" ", "_")


def _axis_keys(grid: Grid, axis: str, present: Sequence[str]) -> list[str]:
    """An axis's names in report order: the grid's when it lists the axis, else sorted."""
    listed = list(getattr(grid, axis))
    return listed if listed else sorted(set(present))


def _of_source(table: pd.DataFrame, published: bool) -> pd.DataFrame:
    """The rows of one source when the table says (``source``): published or not."""
    if "source" not in table.columns:
        return table
    return table.loc[(table["source"].astype(str) == "published") == published]


def _source_rows(
    table: pd.DataFrame, stats: dict[str, str], counts: Sequence[str] = ()
) -> pd.DataFrame:
    """One source's headline rows with finite values, keyed and renamed by ``stats``, with the
    integer ``counts`` columns (NA where the table lacks them)."""
    import numpy as np
    import pandas as pd

    if len(table.columns) == 0:
        return pd.DataFrame(columns=[*KEY_COLUMNS, "metric", *stats.values(), *counts])
    rows = headline_rows(table)
    out = rows.loc[:, [*KEY_COLUMNS, "metric", *stats]].rename(columns=stats)
    for col in (*KEY_COLUMNS, "metric"):
        out[col] = out[col].astype(str)
    for col in stats.values():
        out[col] = pd.to_numeric(out[col]).astype("float64")
    for col in counts:
        values = rows[col] if col in rows else pd.Series(pd.NA, index=rows.index)
        out[col] = pd.to_numeric(values).astype("Int64")
    needed = [stats[k] for k in stats if k != "point"]
    finite = np.isfinite(out.loc[:, needed].to_numpy()).all(axis=1)
    return out.loc[finite].reset_index(drop=True)


def _restrict(rows: pd.DataFrame, grid: Grid) -> tuple[pd.DataFrame, int]:
    """Rows inside the grid's listed axes, and the number of cells left out."""
    keep = rows["metric"].notna()
    for axis in AXES:
        if getattr(grid, axis):
            keep &= rows[COLUMN[axis]].isin(list(getattr(grid, axis)))
    outside = rows.loc[~keep, list(KEY_COLUMNS)].drop_duplicates()
    return rows.loc[keep], len(outside)


def _statuses(table: pd.DataFrame) -> pd.DataFrame:
    """Add delta, published_in_ci, cis_overlap and status to merged rows."""
    import numpy as np
    import pandas as pd

    ours = table["boot_mean"].notna().to_numpy()
    theirs = table["published_mean"].notna().to_numpy()
    both = ours & theirs
    in_ci = (table["ci_lower"] <= table["published_mean"]) & (
        table["published_mean"] <= table["ci_upper"]
    )
    overlap = (table["ci_lower"] <= table["published_ci_upper"]) & (
        table["published_ci_lower"] <= table["ci_upper"]
    )
    in_ci, overlap = in_ci.to_numpy(), overlap.to_numpy()
    status = np.select(
        [both & in_ci, both & overlap, both, theirs],
        ["agrees", "overlaps", "differs", "not run"],
        default="not published",
    )
    na = pd.NA
    return table.assign(
        delta=table["boot_mean"] - table["published_mean"],
        published_in_ci=pd.array(np.where(both, in_ci, na).tolist(), dtype="boolean"),
        cis_overlap=pd.array(np.where(both, overlap, na).tolist(), dtype="boolean"),
        status=status.astype(object),
    )


def _with_names(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Add display names and dataset category columns."""
    names = {
        f"{COLUMN[axis]}_name": table[COLUMN[axis]].map(
            {k: grid.name(axis, k) for k in set(table[COLUMN[axis]])}
        )
        for axis in AXES
    }
    category = table["dataset"].map(lambda d: grid.categories.get(d, ""))
    return table.assign(**names, category=category)


def _sorted(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Rows in grid order (dataset, strategy, model), then ``METRIC_ORDER``."""
    ranks = {
        f"_{axis}": table[COLUMN[axis]].map(
            {k: i for i, k in enumerate(_axis_keys(grid, axis, table[COLUMN[axis]]))}
        )
        for axis in ("datasets", "strategies", "models")
    }
    ranks["_metric"] = table["metric"].map({m: i for i, m in enumerate(METRIC_ORDER)})
    ordered = table.assign(**ranks).sort_values(list(ranks), kind="stable")
    return ordered.drop(columns=list(ranks)).reset_index(drop=True)


def compare(reproduced: pd.DataFrame, published: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """One row per (cell, metric) of either source inside the grid: both results and a status.

    ``reproduced`` and ``published`` are tidy tables (either may be empty); where they have a
    ``source`` column only their own rows enter, so one merged table may be passed as both (its
    "published" rows are the published side, all others ours). The columns are
    ``COMPARISON_COLUMNS``; ``attrs["outside_grid"]`` counts, per source, the cells left out
    because a listed grid axis lacks one of their names.
    """
    mine = _source_rows(_of_source(reproduced, False), {c: c for c in _OURS}, ["n_images"])
    renames = dict(zip(("boot_mean", "ci_lower", "ci_upper"), _THEIRS, strict=True))
    ours, out_ours = _restrict(mine, grid)
    theirs, out_theirs = _restrict(_source_rows(_of_source(published, True), renames), grid)
    key = [*KEY_COLUMNS, "metric"]
    merged = ours.merge(theirs, on=key, how="outer", sort=False)
    for col in key:
        merged[col] = merged[col].astype(str)
    for col in (*_OURS, *_THEIRS):
        merged[col] = merged[col].astype("float64")
    merged["n_images"] = merged["n_images"].astype("Int64")
    merged["unreliable"] = merged["n_images"].map(is_unreliable).astype(bool)
    table = _sorted(_with_names(_statuses(merged), grid), grid)
    table = table.loc[:, list(COMPARISON_COLUMNS)]
    table.attrs["outside_grid"] = {"reproduced": out_ours, "published": out_theirs}
    return table


def _summarise(rows: pd.DataFrame, by: list[str], order: list[str] | None) -> pd.DataFrame:
    """Counts per status, share agreeing and mean (|)delta(|) of rows grouped by ``by``."""
    import pandas as pd

    counts = {count_column(s): (rows["status"] == s).astype(int) for s in STATUSES}
    abs_delta = rows["delta"].abs()
    frame = rows.loc[:, by].assign(**counts, _delta=rows["delta"], _abs=abs_delta)
    if by:
        grouped = frame.groupby(by, sort=False, dropna=False)
        out = grouped[list(counts)].sum()
        out["mean_abs_delta"] = grouped["_abs"].mean()
        out["mean_delta"] = grouped["_delta"].mean()
        out = out.reset_index()
        if order is not None:
            rank = {k: i for i, k in enumerate(order)}
            out = out.sort_values(by[0], key=lambda s: s.map(rank), kind="stable")
    else:
        out = pd.DataFrame([{c: int(frame[c].sum()) for c in counts}])
        out["mean_abs_delta"] = abs_delta.mean() if len(rows) else math.nan
        out["mean_delta"] = rows["delta"].mean() if len(rows) else math.nan
    compared = out[[count_column(s) for s in COMPARED]].sum(axis=1)
    out.insert(len(by), "cells", out[list(counts)].sum(axis=1).astype(int))
    out.insert(len(by) + 1 + len(STATUSES), "compared", compared.astype(int))
    share = out["agrees"] / compared.where(compared > 0)
    out.insert(len(by) + 2 + len(STATUSES), "share_agreeing", share.astype("float64"))
    return out.reset_index(drop=True)


def summaries(
    comparison: pd.DataFrame, grid: Grid | None = None, metric: str = VIEW_METRIC
) -> dict[str, pd.DataFrame]:
    """Per ``metric``: the status counts, share agreeing (among compared cells), mean |delta| and
    mean delta, "overall" (one row) and per "datasets", "models" and "strategies" (grid order
    when a grid is given, else order of first appearance), with display names."""
    rows = comparison.loc[comparison["metric"] == metric]
    out = {"overall": _summarise(rows, [], None)}
    extra = {
        "datasets": ["dataset_name", "category"],
        "models": ["model_name"],
        "strategies": ["strategy_name"],
    }
    for axis in AXES:
        col = COLUMN[axis]
        order = _axis_keys(grid, axis, rows[col]) if grid is not None else None
        if order is not None:
            order += sorted(set(rows[col]) - set(order))
        by = [col, *extra[axis]]
        out[axis] = _summarise(rows, by, order)
    return out


def metric_summary(comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per headline metric (``METRIC_ORDER``): its status counts and deltas."""
    import pandas as pd

    parts = [
        _summarise(comparison.loc[comparison["metric"] == m], [], None).assign(metric=m)
        for m in METRIC_ORDER
    ]
    table = pd.concat(parts, ignore_index=True)
    return table.loc[:, ["metric", *(c for c in table.columns if c != "metric")]]


def not_run(comparison: pd.DataFrame, metric: str = VIEW_METRIC) -> pd.DataFrame:
    """The cells not run (published, not reproduced) of ``metric``, in comparison order."""
    rows = comparison.loc[(comparison["metric"] == metric) & (comparison["status"] == "not run")]
    return rows.reset_index(drop=True)
