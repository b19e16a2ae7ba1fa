"""Report products of variant runs (densebench.variants) and of the UNet baseline.

Their scores come from `densebench score --variants`: the usual tidy rows plus a `variant`
column (the run folder's suffix, '' for a cell's own run), so one table holds every input size
or training seed of a cell.

- ``build_input_size``: Mean Dice [95% CI] against the requested input side S (log2 axis), one
  line per model (and strategy), one panel per dataset.
- ``seed_spread``: per grid cell, the bootstrap CI of its own run beside the spread of the
  headline metric across training seeds (mean, SD, min, max): the paper's CIs ignore training
  noise (one seed per cell).
- ``baseline_table`` / ``build_baseline_figure``: the UNet trained from scratch beside the PFMs
  of a results source: per dataset its Mean Dice against each strategy's best and median PFM, and
  Figure 3's box plots with the UNet as a reference line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.report import style
from densebench.report.ablations import ci_errorbar, dataset_panels
from densebench.report.formats import ci_cell, write_text_table
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC, metric_cells
from densebench.variants import Variant

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

RUN_KEY = ("dataset", "model", "strategy", "variant")


def read_variant_scores(path: Path) -> pd.DataFrame:
    """The scores of variant runs (`densebench score --variants`), with each run's requested
    input side (`size`) and training seed (`train_seed`) parsed from its variant."""
    import pandas as pd

    text = {c: str for c in ("dataset", "model", "strategy", "variant", "metric")}
    frame = pd.read_csv(path, dtype=text | {"class": "Int64"})
    if "variant" not in frame.columns:
        raise ValueError(
            f"{path}: no variant column; score its runs with `densebench score --variants`"
        )
    frame["variant"] = frame["variant"].fillna("")
    variants = [Variant.parse(v) for v in frame["variant"]]
    return frame.assign(size=[v.size for v in variants], train_seed=[v.seed for v in variants])


def variant_cells(scores: pd.DataFrame, metric: str = RANK_METRIC) -> pd.DataFrame:
    """Headline rows of ``metric`` of every run (one per run; a repeated run is an error)."""
    rows = scores[(scores["metric"] == metric) & scores["class"].isna()]
    dup = rows.duplicated(list(RUN_KEY), keep=False)
    if dup.any():
        first = rows.loc[dup, list(RUN_KEY)].iloc[0].tolist()
        raise ValueError(f"variant scores hold run {first} twice")
    return rows.reset_index(drop=True)


# ---- input size ---------------------------------------------------------------------------


def build_input_size(scores: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> Figure:
    """Mean Dice [95% CI] against the requested input side S, one panel per dataset."""
    cells = variant_cells(scores, metric)
    cells = cells[cells["size"].notna() & cells["dataset"].isin(grid.datasets)]
    datasets = [d for d in grid.datasets if d in set(cells["dataset"])]
    if not datasets:
        raise ValueError(f"input-size figure: no {metric} scores of resize<S> runs")
    styles = style.model_styles(grid)
    several = len(set(cells["strategy"])) > 1
    with style.print_style():
        fig, axes = dataset_panels(len(datasets))
        for ax, dataset in zip(axes, datasets, strict=True):
            part = cells[cells["dataset"] == dataset]
            for model in grid.models:
                for strategy in grid.strategies:
                    rows = part[(part["model"] == model) & (part["strategy"] == strategy)]
                    if rows.empty:
                        continue
                    rows = rows.sort_values("size")
                    colour, marker = styles[model]
                    label = grid.name("models", model)
                    label += f", {grid.name('strategies', strategy)}" if several else ""
                    ci_errorbar(ax, rows["size"], rows, color=colour, marker=marker, label=label)
            sizes = sorted({int(s) for s in part["size"]})
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.set_title(grid.name("datasets", dataset))
            ax.set_xlabel("input side S (px)")
        axes[0].set_ylabel(f"{metric.replace('_', ' ')} (95% CI)")
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=4)
    return fig


# ---- training-seed spread -----------------------------------------------------------------


def seed_spread(scores: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> pd.DataFrame:
    """Per grid cell: its own run's bootstrap mean and 95% CI, and ``metric`` across its
    training seeds (every seed run, its own included): n, mean, SD (n - 1), min, max."""
    import pandas as pd

    cells = variant_cells(scores, metric)
    cells = cells[cells["size"].isna()]  # seed runs only (no resize variants)
    out = []
    for strategy in grid.strategies:
        for model in grid.models:
            for dataset in grid.datasets:
                part = cells[(cells["dataset"] == dataset) & (cells["model"] == model)
                             & (cells["strategy"] == strategy)]  # fmt: skip
                if part.empty:
                    continue
                own = part[part["variant"] == ""]
                if own.empty:
                    raise ValueError(
                        f"seed spread: no run of train.seed for {dataset}/{model}/{strategy}"
                    )
                ref, values = own.iloc[0], part["boot_mean"].astype("float64")
                out.append({
                    "dataset": dataset, "model": model, "strategy": strategy, "metric": metric,
                    "boot_mean": float(ref["boot_mean"]), "ci_lower": float(ref["ci_lower"]),
                    "ci_upper": float(ref["ci_upper"]), "seeds": len(values),
                    "seeds_mean": float(values.mean()),
                    "seeds_sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "seeds_min": float(values.min()), "seeds_max": float(values.max()),
                })  # fmt: skip
    if not out:
        raise ValueError(f"seed spread: no {metric} scores of the grid's seed runs")
    frame = pd.DataFrame(out)
    return frame.assign(
        ci_width=frame["ci_upper"] - frame["ci_lower"],
        seeds_range=frame["seeds_max"] - frame["seeds_min"],
    )


def write_seed_spread(scores: pd.DataFrame, grid: Grid, stem: Path) -> list[Path]:
    """Write the seed-spread table as CSV, Markdown and LaTeX."""
    frame = seed_spread(scores, grid)
    header = ["Dataset", "Model", "Strategy", "Mean Dice [95% CI]", "CI width",
              "Seeds", "Seed mean", "Seed SD", "Seed range"]  # fmt: skip
    rows = []
    for r in frame.to_dict("records"):
        sd = "n/a" if math.isnan(r["seeds_sd"]) else f"{r['seeds_sd']:.4f}"
        rows.append([
            grid.name("datasets", r["dataset"]), grid.name("models", r["model"]),
            grid.name("strategies", r["strategy"]),
            ci_cell(r["boot_mean"], r["ci_lower"], r["ci_upper"]), f"{r['ci_width']:.4f}",
            str(r["seeds"]), f"{r['seeds_mean']:.4f}", sd,
            f"[{r['seeds_min']:.3f}, {r['seeds_max']:.3f}]",
        ])  # fmt: skip
    note = (
        f"{RANK_METRIC} of each cell's own run (train.seed) with its 95% bootstrap CI over test "
        "images, beside the spread across training seeds (every seed's run: its bootstrap mean; "
        "SD with n - 1). The CI reflects test-set sampling only; the seed spread, training noise."
    )
    title = "Training-seed spread"
    return write_text_table(frame, header, rows, title, note, "tab:seed-spread", stem)


# ---- UNet baseline ------------------------------------------------------------------------


def baseline_table(
    baseline: pd.DataFrame, pfms: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC
) -> pd.DataFrame:
    """Per dataset: the baseline's ``metric`` [95% CI] and, per strategy, the best PFM (and
    which), the median PFM and how many PFMs the baseline beats (strictly)."""
    import pandas as pd

    ours = variant_cells(baseline, metric)
    cells = metric_cells(pfms, grid, metric)
    out = []
    for dataset in grid.datasets:
        run = ours[ours["dataset"] == dataset]
        if run.empty:
            continue
        ref = run.iloc[0]
        record: dict[str, Any] = {
            "dataset": dataset, "baseline": str(ref["model"]), "metric": metric,
            "boot_mean": float(ref["boot_mean"]), "ci_lower": float(ref["ci_lower"]),
            "ci_upper": float(ref["ci_upper"]),
        }  # fmt: skip
        for strategy in grid.strategies:
            part = cells[(cells["dataset"] == dataset) & (cells["strategy"] == strategy)]
            values = part["boot_mean"].astype("float64")
            best = part.loc[values.idxmax()] if len(part) else None
            record[f"{strategy}_best"] = float(values.max()) if len(part) else math.nan
            record[f"{strategy}_best_model"] = str(best["model"]) if best is not None else ""
            record[f"{strategy}_median"] = float(values.median()) if len(part) else math.nan
            record[f"{strategy}_beaten"] = int((values < record["boot_mean"]).sum())
            record[f"{strategy}_pfms"] = len(part)
        out.append(record)
    if not out:
        raise ValueError(
            f"baseline table: no {metric} score of the baseline on the grid's datasets"
        )
    return pd.DataFrame(out)


def write_baseline_table(
    baseline: pd.DataFrame, pfms: pd.DataFrame, grid: Grid, stem: Path
) -> list[Path]:
    """Write the baseline table as CSV, Markdown and LaTeX (one row per dataset)."""
    frame = baseline_table(baseline, pfms, grid)
    name = grid.name("models", str(frame["baseline"].iloc[0]))
    header = ["Dataset", f"{name} [95% CI]"]
    header += [f"{grid.name('strategies', s)}: best / median (beaten)" for s in grid.strategies]
    rows = []
    for r in frame.to_dict("records"):
        row = [grid.name("datasets", r["dataset"]),
               ci_cell(r["boot_mean"], r["ci_lower"], r["ci_upper"])]  # fmt: skip
        for s in grid.strategies:
            if not r[f"{s}_pfms"]:
                row.append("n/a")
                continue
            best = grid.name("models", r[f"{s}_best_model"])
            row.append(f"{r[f'{s}_best']:.3f} ({best}) / {r[f'{s}_median']:.3f} "
                       f"({r[f'{s}_beaten']}/{r[f'{s}_pfms']})")  # fmt: skip
        rows.append(row)
    note = (
        f"{RANK_METRIC} (bootstrap mean) of the {name} trained from scratch with the grid's "
        "recipe, beside each strategy's best PFM (which), the median PFM and how many PFMs "
        f"score below the {name} (beaten / PFMs with a score)."
    )
    title = f"{name} baseline against the PFMs"
    return write_text_table(frame, header, rows, title, note, "tab:baseline-unet", stem)


def build_baseline_figure(
    baseline: pd.DataFrame, pfms: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC
) -> Figure:
    """Figure 3 (per dataset a box per strategy of the PFMs) with the baseline's ``metric`` as
    a dashed reference line and its CI as a band."""
    from densebench.report.figures.boxes import build_figure3

    ours = variant_cells(baseline, metric)
    fig = build_figure3(pfms, grid, metric)
    titles = {grid.name("datasets", d): d for d in grid.datasets}
    name = ""
    for ax in fig.axes:
        dataset = titles.get(ax.get_title())
        run = ours[ours["dataset"] == dataset] if dataset else ours.iloc[:0]
        if run.empty:
            continue
        ref = run.iloc[0]
        name = grid.name("models", str(ref["model"]))
        ax.axhline(float(ref["boot_mean"]), color="black", linestyle="--", linewidth=1)
        ax.axhspan(float(ref["ci_lower"]), float(ref["ci_upper"]), color="grey", alpha=0.2)
    if not name:
        raise ValueError("baseline figure: the baseline has no score on a dataset of the figure")
    fig.suptitle(f"dashed: {name} from scratch (band: 95% CI)", fontsize=style.MIN_FONT_PT)
    return fig
