"""Import of the published results (the paper's per-strategy JSON) as tidy rows (protocol §6).

The JSON maps dataset -> model -> metric -> {mean, ci_lower, ci_upper}, the 8 headline
``METRICS`` only. Rows get source "published" and the schema of
``densebench.report.aggregate`` (``boot_mean`` = the published mean; no point value, standard
deviation or counts), so they combine with the reproduced rows in one table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import COLUMNS, empty_table, tidy

if TYPE_CHECKING:
    import pandas as pd


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
                        "class": pd.NA,
                        "class_name": pd.NA,
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
        return empty_table()
    return tidy(pd.DataFrame(rows, columns=list(COLUMNS)))
