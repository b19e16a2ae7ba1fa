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

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.evaluate.objects import METRICS as OBJECT_METRICS
from densebench.report.formats import (
    ci_cell,
    emphasis,
    latex,
    latex_escape,
    markdown,
    md_mark,
    tex_mark,
    write_formats,
)
from densebench.report.grid import Grid
from densebench.report.reliability import marked, with_note

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


def object_wide(part: pd.DataFrame, grid: Grid, metrics: Sequence[str]) -> pd.DataFrame:
    """Models x (metric, _ci_lower, _ci_upper) of one (dataset, strategy), rows by the kind's
    sort metric descending (ties and missing values in grid order)."""
    import pandas as pd

    order = {m: i for i, m in enumerate(grid.models)}
    models = sorted(dict.fromkeys(part["model"]), key=lambda m: (order.get(m, len(order)), m))
    wide = pd.DataFrame({"model": models}, index=models)
    for stat, suffix in (("boot_mean", ""), ("ci_lower", "_ci_lower"), ("ci_upper", "_ci_upper")):
        pivot = part.pivot(index="model", columns="metric", values=stat)
        for name in metrics:
            values = pivot[name].reindex(models) if name in pivot else math.nan
            wide[f"{name}{suffix}"] = pd.Series(values, index=models, dtype="float64")
    kind = object_kind(metrics)
    wide = wide.sort_values(SORT_METRIC[kind], ascending=False, kind="stable", na_position="last")
    wide.insert(1, "model_name", [grid.name("models", m) for m in wide["model"]])
    columns = [f"{n}{s}" for n in metrics for s in ("", "_ci_lower", "_ci_upper")]
    return wide.loc[:, ["model", "model_name", *columns]].reset_index(drop=True)


def _cells(wide: pd.DataFrame, metrics: Sequence[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Markdown and LaTeX cells, best bold and second underlined per column (a lower-is-better
    metric ranked on its negated values)."""
    md_rows: list[list[str]] = [[] for _ in range(len(wide))]
    tex_rows: list[list[str]] = [[] for _ in range(len(wide))]
    for name in metrics:
        sign = -1.0 if name in LOWER_IS_BETTER else 1.0
        marks = emphasis([sign * float(v) for v in wide[name]])
        bounds = zip(wide[name], wide[f"{name}_ci_lower"], wide[f"{name}_ci_upper"], strict=True)
        for i, (mark, values) in enumerate(zip(marks, bounds, strict=True)):
            text = ci_cell(*(float(v) for v in values), digits=2 if sign < 0 else 3)
            md_rows[i].append(md_mark(text, mark))
            tex_rows[i].append(tex_mark(text, mark))
    return md_rows, tex_rows


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


def object_tables(table: pd.DataFrame, grid: Grid, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<dataset>/<strategy>.{csv,md,tex}`` per (dataset, strategy) cell of the
    grid with object metrics; return the paths (none for a source without them)."""
    rows = object_rows(table)
    rows = rows[
        rows["dataset"].isin(grid.datasets)
        & rows["model"].isin(grid.models)
        & rows["strategy"].isin(grid.strategies)
    ]
    written: list[Path] = []
    for dataset in grid.datasets:
        for strategy in grid.strategies:
            part = rows[(rows["dataset"] == dataset) & (rows["strategy"] == strategy)]
            if part.empty:
                continue
            kind = object_kind(part["metric"].unique())
            metrics = OBJECT_METRICS[kind]
            wide = object_wide(part, grid, metrics)
            title = f"{grid.name('datasets', dataset)} — {grid.name('strategies', strategy)}"
            note = (
                f"{NOTE[kind]} Values: mean of the bootstrap replicates [2.5th, 97.5th "
                "percentile]; per column the best in bold, the second underlined."
            )
            counts = part.groupby("model")["n_images"].first() if "n_images" in part else {}
            images = [counts.get(m) for m in wide["model"]]
            note = with_note(note, images)
            md_cells, tex_cells = _cells(wide, metrics)
            names = [marked(n, k) for n, k in zip(wide["model_name"], images, strict=True)]
            header = ["Model", *metrics]
            md = markdown(
                header, [[n, *c] for n, c in zip(names, md_cells, strict=True)], title, note
            )
            tex_rows = [[latex_escape(n), *c] for n, c in zip(names, tex_cells, strict=True)]
            label = f"tab:objects-{dataset}-{strategy}".replace("_", "-")
            tex = latex(header, tex_rows, f"{title}. {note}", label)
            written += write_formats(wide, md, tex, Path(out_dir) / dataset / strategy)
    return written
