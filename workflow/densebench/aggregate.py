"""Aggregation of per-run metric tables and import of the published results (protocol §6).

Both functions return the same tidy schema (``COLUMNS``): one row per
(dataset, model, strategy, metric), sorted by dataset, strategy, model and the published metric
order, with ``source`` telling reproduced numbers from published ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.metrics import METRICS, RUN_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

KEY_COLUMNS: tuple[str, ...] = ("dataset", "model", "strategy")
COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *RUN_COLUMNS, "source")
ROW_KEY: tuple[str, ...] = (*KEY_COLUMNS, "metric")
SORT_KEY: tuple[str, ...] = ("dataset", "strategy", "model", "metric")

_FLOAT_COLUMNS = ("point", "boot_mean", "ci_lower", "ci_upper", "boot_std")
_COUNT_COLUMNS = ("n_images", "replicates", "seed")


def sort_table(table: pd.DataFrame) -> pd.DataFrame:
    """Sort a tidy table by (dataset, strategy, model, metric order) and reset its index."""
    order = {name: i for i, name in enumerate(METRICS)}
    metric_rank = table["metric"].map(order)
    ordered = table.assign(_metric_rank=metric_rank).sort_values(
        ["dataset", "strategy", "model", "_metric_rank"], kind="stable"
    )
    return ordered.drop(columns="_metric_rank").reset_index(drop=True)


def _coerce(table: pd.DataFrame) -> pd.DataFrame:
    """Cast the tidy columns to their dtypes (str keys, float stats, nullable int counts)."""
    import pandas as pd

    out = table.loc[:, list(COLUMNS)].copy()
    for col in (*KEY_COLUMNS, "metric", "source"):
        out[col] = out[col].astype(str)
    for col in _FLOAT_COLUMNS:
        out[col] = pd.to_numeric(out[col]).astype("float64")
    for col in _COUNT_COLUMNS:
        out[col] = pd.to_numeric(out[col]).astype("Int64")
    return out


def _check_metrics(table: pd.DataFrame, origin: str) -> None:
    """Raise ValueError naming ``origin`` if a row has a metric outside METRICS."""
    unknown = sorted(set(table["metric"]) - set(METRICS))
    if unknown:
        raise ValueError(f"{origin}: unknown metric(s) {unknown}")


def _empty() -> pd.DataFrame:
    """Return an empty tidy table with the schema columns."""
    import pandas as pd

    return _coerce(pd.DataFrame({col: [] for col in COLUMNS}))


def aggregate(paths: Sequence[Path]) -> pd.DataFrame:
    """Concatenate per-run metric CSVs into one sorted tidy table with source "reproduced"."""
    import pandas as pd

    required = [*KEY_COLUMNS, *RUN_COLUMNS]
    frames: list[pd.DataFrame] = []
    seen: dict[tuple[str, ...], Path] = {}
    for path in map(Path, paths):
        frame = pd.read_csv(path, dtype={col: str for col in (*KEY_COLUMNS, "metric")})
        missing = [col for col in required if col not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing required column(s) {missing}")
        _check_metrics(frame, str(path))
        for key in frame.loc[:, list(ROW_KEY)].itertuples(index=False, name=None):
            if key in seen:
                where = "twice in that file" if seen[key] == path else f"also in {seen[key]}"
                raise ValueError(
                    f"{path}: duplicate row for (dataset, model, strategy, metric) = {key} "
                    f"({where})"
                )
            seen[key] = path
        frames.append(frame.loc[:, required].assign(source="reproduced"))
    if not frames:
        return _empty()
    return sort_table(_coerce(pd.concat(frames, ignore_index=True)))


def import_published(json_path: Path, strategy: str) -> pd.DataFrame:
    """Import a published dataset -> model -> metric -> {mean, ci_*} JSON as tidy rows."""
    import pandas as pd

    json_path = Path(json_path)
    with json_path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    rows = []
    nan = math.nan
    for dataset, models in data.items():
        for model, metrics in models.items():
            missing = [name for name in METRICS if name not in metrics]
            if missing:
                raise ValueError(f"{json_path}: {dataset}/{model} lacks metric(s) {missing}")
            for name, stats in metrics.items():
                if name not in METRICS:
                    raise ValueError(f"{json_path}: {dataset}/{model}: unknown metric {name!r}")
                try:
                    mean, lower, upper = (stats[k] for k in ("mean", "ci_lower", "ci_upper"))
                except (KeyError, TypeError) as err:
                    raise ValueError(
                        f"{json_path}: {dataset}/{model}/{name} lacks mean/ci_lower/ci_upper"
                    ) from err
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "strategy": strategy,
                        "metric": name,
                        "point": nan,
                        "boot_mean": mean,
                        "ci_lower": lower,
                        "ci_upper": upper,
                        "boot_std": nan,
                        "n_images": pd.NA,
                        "replicates": pd.NA,
                        "seed": pd.NA,
                        "source": "published",
                    }
                )
    if not rows:
        return _empty()
    return sort_table(_coerce(pd.DataFrame(rows, columns=list(COLUMNS))))
