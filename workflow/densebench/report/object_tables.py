"""The report's object-level tables: nucleus instance metrics and gland object metrics.

Beside (never instead of) the paper's eight pixel metrics, sources with our runs carry, for the
datasets whose card has instance labels, the object metrics of `densebench.evaluate.objects`
(rows of the tidy table with those metric names, class NA). Per (dataset, strategy) cell:

- nuclear datasets: the grid's models x PQ, DQ, SQ, AJI and F1 (IoU > 0.5), rows by PQ;
- gland datasets: models x object F1, object Dice and object Hausdorff (GlaS), rows by object F1.

Each value is the mean of the bootstrap replicates with its 95% percentile interval (the image
draws of the pixel metrics), as CSV, Markdown and LaTeX (``objects/<dataset>/<strategy>.*``);
per column the best is bold and the second underlined (the lowest Hausdorff is the best).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.evaluate.objects import METRICS as OBJECT_METRICS
from densebench.report.grid import Grid
from densebench.report.tables import grid_cells, grid_parts, wide_table, write_cell_table

if TYPE_CHECKING:
    import pandas as pd

LOWER_IS_BETTER: frozenset[str] = frozenset({"Object_Hausdorff"})
"""Object metrics whose best value is the lowest (a distance, in pixels)."""
SORT_METRIC = {"nucleus": "PQ", "gland": "Object_F1"}
"""The metric each kind's table is sorted by (descending)."""


def object_kind(metrics: Sequence[str]) -> str | None:
    """The kind of objects a set of metric names scores (nucleus or gland), if any."""
    for kind, names in OBJECT_METRICS.items():
        if any(m in names for m in metrics):
            return kind
    return None


def object_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The object-metric rows of a tidy table (no class)."""
    names = {m for metrics in OBJECT_METRICS.values() for m in metrics}
    keep = table["metric"].isin(names)
    if "class" in table:
        keep &= table["class"].isna()
    return table.loc[keep]


NOTE = {
    "nucleus": (
        "Nucleus instance metrics: predicted nuclei are the 8-connected components of each "
        "predicted class; pairs matched at IoU > 0.5 give PQ = DQ x SQ (F1 at IoU > 0.5 equals "
        "DQ); AJI as Kumar et al. 2017."
    ),
    "gland": (
        "Gland object metrics (GlaS challenge): predicted glands are the 8-connected components "
        "of the predicted foreground; object F1, object Dice, object Hausdorff (pixels, lower is "
        "better)."
    ),
}
DIGITS = {"Object_Hausdorff": 2}
"""Digits of the metrics not shown with 3 (a distance in pixels)."""


def object_tables(table: pd.DataFrame, grid: Grid, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<dataset>/<strategy>.{csv,md,tex}`` per (dataset, strategy) cell of the
    grid with object metrics; return the paths (none for a source without them)."""
    written: list[Path] = []
    for dataset, strategy, part in grid_parts(grid_cells(object_rows(table), grid), grid):
        kind = object_kind(part["metric"].unique())
        metrics = OBJECT_METRICS[kind]
        wide = wide_table(part, grid, metrics, SORT_METRIC[kind])
        note = (
            f"{NOTE[kind]} Values: mean of the bootstrap replicates [2.5th, 97.5th "
            "percentile]; per column the best in bold, the second underlined."
        )
        cell = (dataset, strategy)
        written += write_cell_table(
            wide, grid, cell, note, metrics, out_dir, "tab:objects-",
            lowest_best=LOWER_IS_BETTER, digits=DIGITS,
        )  # fmt: skip
    return written
