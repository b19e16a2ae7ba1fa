"""Per-strategy tables of the report: models x headline metrics, as CSV and Markdown.

Everything here reads only the tidy table of ``densebench.report.aggregate`` (columns dataset,
model, strategy, metric, boot_mean, ci_lower, ci_upper, ...); the value shown is ``boot_mean``, the
published "mean" (mean of the bootstrap replicates), with its 95% percentile interval. Tables
use the 8 headline ``METRICS`` only (``headline_rows``); per-class rows are not rendered. Display
names (``display``) are shared with ``densebench.report.figures``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.atomic import write_table, write_text
from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import headline_rows

if TYPE_CHECKING:
    import pandas as pd

DisplayNames = Mapping[str, Mapping[str, str]]

RANK_METRIC = "Mean_Dice"


def display(display_names: DisplayNames | None, axis: str, key: str) -> str:
    """Return the display name of ``key`` on ``axis`` ("models"/"datasets"/"strategies")."""
    if not display_names:
        return key
    return display_names.get(axis, {}).get(key, key)


def wide_table(part: pd.DataFrame, display_names: DisplayNames | None = None) -> pd.DataFrame:
    """Return models x (metric, metric_ci_lower, metric_ci_upper), best Mean_Dice first."""
    import pandas as pd

    columns = []
    for name in METRICS:
        columns += [name, f"{name}_ci_lower", f"{name}_ci_upper"]
    models = list(dict.fromkeys(part["model"]))
    wide = pd.DataFrame({"model": models}, index=models)
    for stat, suffix in (("boot_mean", ""), ("ci_lower", "_ci_lower"), ("ci_upper", "_ci_upper")):
        pivot = part.pivot(index="model", columns="metric", values=stat)
        for name in METRICS:
            wide[f"{name}{suffix}"] = (
                pivot[name].reindex(models).astype("float64") if name in pivot else math.nan
            )
    wide = wide.sort_values("model", kind="stable").sort_values(
        RANK_METRIC, ascending=False, kind="stable", na_position="last"
    )
    wide.insert(1, "model_name", [display(display_names, "models", m) for m in wide["model"]])
    return wide.loc[:, ["model", "model_name", *columns]].reset_index(drop=True)


def _cell(mean: float, lower: float, upper: float) -> str:
    """Format one Markdown cell as ``0.812 [0.781, 0.843]`` ("n/a" when missing)."""
    if any(isinstance(v, float) and math.isnan(v) for v in (mean, lower, upper)):
        return "n/a"
    return f"{mean:.3f} [{lower:.3f}, {upper:.3f}]"


def _md_escape(text: str) -> str:
    """Escape characters that would break a Markdown table cell."""
    return text.replace("|", "\\|")


def markdown_table(wide: pd.DataFrame, title: str) -> str:
    """Render a wide table as a Markdown document with a title line (no tabulate needed)."""
    header = ["Model", *METRICS]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---", *(["---:"] * len(METRICS))]) + "|")
    for rec in wide.to_dict("records"):
        cells = [_md_escape(str(rec["model_name"]))]
        for name in METRICS:
            bounds = (rec[name], rec[f"{name}_ci_lower"], rec[f"{name}_ci_upper"])
            cells.append(_cell(*(float(v) for v in bounds)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Values: mean of the bootstrap replicates [2.5th, 97.5th percentile]; "
        f"rows sorted by {RANK_METRIC} (descending)."
    )
    return "\n".join(lines) + "\n"


def strategy_tables(
    table: pd.DataFrame, out_dir: Path, display_names: DisplayNames | None = None
) -> list[Path]:
    """Write ``<out_dir>/<dataset>/<strategy>.{csv,md}`` per (dataset, strategy); return paths."""
    table = headline_rows(table)
    out_dir = Path(out_dir)
    written: list[Path] = []
    for (dataset, strategy), part in table.groupby(["dataset", "strategy"], sort=True):
        wide = wide_table(part, display_names)
        csv_path = out_dir / str(dataset) / f"{strategy}.csv"
        md_path = out_dir / str(dataset) / f"{strategy}.md"
        title = (
            f"{display(display_names, 'datasets', str(dataset))} — "
            f"{display(display_names, 'strategies', str(strategy))}"
        )
        write_table(wide, csv_path)
        write_text(markdown_table(wide, title), md_path)
        written += [csv_path, md_path]
    return written
