"""Report rendering from the tidy metrics table: per-strategy tables and the Figure 3 analogue.

Everything here reads only the tidy table of ``densebench.report.aggregate`` (columns dataset,
model, strategy, metric, boot_mean, ci_lower, ci_upper, ...); the value shown is ``boot_mean``, the
published "mean" (mean of the bootstrap replicates), with its 95% percentile interval. Tables
and Figure 3 use the 8 headline ``METRICS`` only (``headline_rows``); the per-class rows of the
tidy table (non-empty ``class``) are not rendered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.atomic import atomic_output, write_text
from densebench.evaluate.metrics import METRICS, write_table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

DisplayNames = Mapping[str, Mapping[str, str]]

RANK_METRIC = "Mean_Dice"
FIG3_NCOLS = 6
FIG3_SIZE_IN: tuple[float, float] = (18.0, 10.0)
FIG3_DPI = 100
JITTER_SEED = 0
JITTER_WIDTH = 0.15


def display(display_names: DisplayNames | None, axis: str, key: str) -> str:
    """Return the display name of ``key`` on ``axis`` ("models"/"datasets"/"strategies")."""
    if not display_names:
        return key
    return display_names.get(axis, {}).get(key, key)


def headline_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the 8 headline ``METRICS`` (no class), dropping the per-class rows."""
    keep = table["metric"].isin(METRICS)
    if "class" in table:
        keep &= table["class"].isna()
    return table.loc[keep]


def _check_unique(table: pd.DataFrame) -> None:
    """Raise ValueError if (dataset, strategy, model, metric) is not unique in ``table``."""
    dup = table.duplicated(["dataset", "strategy", "model", "metric"], keep=False)
    if dup.any():
        first = table.loc[dup, ["dataset", "strategy", "model", "metric"]].iloc[0].tolist()
        raise ValueError(
            f"tidy table has duplicate rows, e.g. {first}; filter it to one source first"
        )


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
    _check_unique(table)
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


def _ordered(values: Sequence[str], order: Sequence[str] | None) -> list[str]:
    """Return unique ``values`` in ``order`` (unknown ones appended in first-seen order)."""
    unique = list(dict.fromkeys(values))
    if order is None:
        return unique
    head = [v for v in order if v in unique]
    return head + [v for v in unique if v not in head]


def build_figure3(
    table: pd.DataFrame,
    metric: str = RANK_METRIC,
    strategy_order: Sequence[str] | None = None,
    display_names: DisplayNames | None = None,
    dataset_order: Sequence[str] | None = None,
) -> Figure:
    """Build the Figure 3 analogue: per dataset, one box per strategy across models."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if metric not in METRICS:
        raise ValueError(
            f"no rows for metric {metric!r}: Figure 3 plots a headline metric, one of "
            f"{list(METRICS)}"
        )
    table = headline_rows(table)
    _check_unique(table)
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no rows for metric {metric!r} in the table")
    datasets = _ordered([str(d) for d in rows["dataset"]], dataset_order)
    strategies = _ordered([str(s) for s in rows["strategy"]], strategy_order)
    ncols = min(FIG3_NCOLS, len(datasets))
    nrows = math.ceil(len(datasets) / ncols)
    fig = Figure(figsize=FIG3_SIZE_IN, dpi=FIG3_DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=False, squeeze=False).ravel()
    for ax in axes[len(datasets) :]:
        fig.delaxes(ax)
    labels = [display(display_names, "strategies", s) for s in strategies]
    for ax, dataset in zip(axes, datasets, strict=False):
        part = rows[rows["dataset"] == dataset]
        groups = [
            part.loc[part["strategy"] == s, "boot_mean"].astype("float64").dropna().to_numpy()
            for s in strategies
        ]
        positions = np.arange(1, len(strategies) + 1)
        ax.boxplot(groups, positions=positions, widths=0.6, showfliers=False)
        rng = np.random.default_rng(JITTER_SEED)
        for pos, values in zip(positions, groups, strict=True):
            jitter = rng.uniform(-JITTER_WIDTH, JITTER_WIDTH, size=len(values))
            ax.scatter(pos + jitter, values, s=10, alpha=0.7, zorder=3)
        ax.set_xticks(positions, labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(display(display_names, "datasets", dataset))
        ax.set_ylabel(metric.replace("_", " "))
    return fig


def figure3(
    table: pd.DataFrame,
    out_png: Path,
    out_pdf: Path,
    metric: str = RANK_METRIC,
    strategy_order: Sequence[str] | None = None,
    display_names: DisplayNames | None = None,
    dataset_order: Sequence[str] | None = None,
) -> None:
    """Render the Figure 3 analogue to PNG and PDF (atomic, metadata-free where possible)."""
    fig = build_figure3(table, metric, strategy_order, display_names, dataset_order)
    with atomic_output(Path(out_png)) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    with atomic_output(Path(out_pdf)) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
