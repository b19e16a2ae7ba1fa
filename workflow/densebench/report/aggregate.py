"""The tidy results table: its schema, its sort order and the aggregation of per-run scores.

One row per (dataset, model, strategy, metric, class), with ``source`` telling reproduced
numbers (``aggregate``) from published ones (``densebench.report.published``). The 8 headline
``METRICS`` and the object metrics (``densebench.evaluate.objects.OBJECT_METRICS``: datasets with
instance labels, beyond the paper) have an empty (NA) ``class`` and ``class_name``; the per-class
``CLASS_METRICS`` (IoU, Dice, Precision, Recall, F1, the authors' ``{metric}_Class_{class}``)
carry the class index and name. Rows are sorted by dataset, strategy, model, then the headline
metrics in published order and the object metrics, then per class index the per-class metrics
in ``CLASS_METRICS`` order (the authors' ``format_results`` layout). Published results have
headline rows only. ``headline_rows`` is the view the report's tables and figures read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.evaluate.bootstrap import CLASS_COLUMNS, RUN_COLUMNS
from densebench.evaluate.metrics import CLASS_METRICS, METRICS
from densebench.evaluate.objects import OBJECT_METRICS

if TYPE_CHECKING:
    import pandas as pd

KEY_COLUMNS: tuple[str, ...] = ("dataset", "model", "strategy")
COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *RUN_COLUMNS, "source")
ROW_KEY: tuple[str, ...] = (*KEY_COLUMNS, "metric", "class")
SORT_KEY: tuple[str, ...] = ("dataset", "strategy", "model", "class", "metric")
HEADLINE_KEY: tuple[str, ...] = ("dataset", "strategy", "model", "metric")
"""What identifies a headline row once a table holds one source."""

_FLOAT_COLUMNS = ("point", "boot_mean", "ci_lower", "ci_upper", "boot_std")
_COUNT_COLUMNS = ("n_images", "replicates", "seed")


def sort_table(table: pd.DataFrame) -> pd.DataFrame:
    """Sort by dataset, strategy, model, class (headline rows first), metric order; reset index."""
    import pandas as pd

    order = {name: i for i, name in enumerate((*METRICS, *OBJECT_METRICS, *CLASS_METRICS))}
    classes = table["class"] if "class" in table else pd.Series(pd.NA, index=table.index)
    ranks = {
        "_class_rank": pd.to_numeric(classes).fillna(-1),
        "_metric_rank": table["metric"].map(order),
    }
    ordered = table.assign(**ranks).sort_values(
        ["dataset", "strategy", "model", *ranks], kind="stable"
    )
    return ordered.drop(columns=list(ranks)).reset_index(drop=True)


def _coerce(table: pd.DataFrame) -> pd.DataFrame:
    """Cast the tidy columns to their dtypes (str keys, float stats, nullable int counts)."""
    import pandas as pd

    out = table.loc[:, list(COLUMNS)].copy()
    for col in (*KEY_COLUMNS, "metric", "source"):
        out[col] = out[col].astype(str)
    out["class"] = pd.to_numeric(out["class"]).astype("Int64")
    out["class_name"] = out["class_name"].astype("string")
    for col in _FLOAT_COLUMNS:
        out[col] = pd.to_numeric(out[col]).astype("float64")
    for col in _COUNT_COLUMNS:
        out[col] = pd.to_numeric(out[col]).astype("Int64")
    return out


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """A table in the tidy schema: ``COLUMNS`` with their dtypes, sorted."""
    return sort_table(_coerce(table))


def empty_table() -> pd.DataFrame:
    """An empty tidy table with the schema columns."""
    import pandas as pd

    return _coerce(pd.DataFrame({col: [] for col in COLUMNS}))


def headline_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the 8 headline ``METRICS`` (no class); raise if a ``HEADLINE_KEY`` repeats."""
    keep = table["metric"].isin(METRICS)
    if "class" in table:
        keep &= table["class"].isna()
    rows = table.loc[keep]
    dup = rows.duplicated(list(HEADLINE_KEY), keep=False)
    if dup.any():
        first = rows.loc[dup, list(HEADLINE_KEY)].iloc[0].tolist()
        raise ValueError(
            f"tidy table has duplicate rows, e.g. {first}; filter it to one source first"
        )
    return rows


def _check_metrics(table: pd.DataFrame, origin: str) -> None:
    """Raise ValueError naming ``origin`` for an unknown metric or a metric/class mismatch."""
    unknown = sorted(set(table["metric"]) - {*METRICS, *OBJECT_METRICS, *CLASS_METRICS})
    if unknown:
        raise ValueError(f"{origin}: unknown metric(s) {unknown}")
    has_class = table["class"].notna()
    headline = table["metric"].isin((*METRICS, *OBJECT_METRICS))
    with_class = sorted(set(table.loc[headline & has_class, "metric"]))
    if with_class:
        raise ValueError(f"{origin}: headline metric(s) {with_class} must not have a class")
    without = sorted(set(table.loc[~headline & ~has_class, "metric"]))
    if without:
        raise ValueError(f"{origin}: per-class metric(s) {without} without a class")


def aggregate(paths: Sequence[Path]) -> pd.DataFrame:
    """Concatenate per-run metric CSVs into one sorted tidy table with source "reproduced"."""
    import pandas as pd

    columns = [*KEY_COLUMNS, *RUN_COLUMNS]
    required = [col for col in columns if col not in CLASS_COLUMNS]
    text = {col: str for col in (*KEY_COLUMNS, "metric", "class_name")}
    frames: list[pd.DataFrame] = []
    seen: dict[tuple, Path] = {}
    for path in map(Path, paths):
        frame = pd.read_csv(path, dtype=text | {"class": "Int64"})
        missing = [col for col in required if col not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing required column(s) {missing}")
        for col in CLASS_COLUMNS:  # tables scored before per-class rows: headline only
            if col not in frame.columns:
                frame[col] = pd.NA
        _check_metrics(frame, str(path))
        classes = [None if pd.isna(c) else int(c) for c in frame["class"]]
        for key in zip(*(frame[col] for col in ROW_KEY[:-1]), classes, strict=True):
            if key in seen:
                where = "twice in that file" if seen[key] == path else f"also in {seen[key]}"
                raise ValueError(
                    f"{path}: duplicate row for (dataset, model, strategy, metric, class) = "
                    f"{key} ({where})"
                )
            seen[key] = path
        frames.append(frame.loc[:, columns].assign(source="reproduced"))
    if not frames:
        return empty_table()
    return tidy(pd.concat(frames, ignore_index=True))
