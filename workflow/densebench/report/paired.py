"""Paired bootstrap differences of reproduced runs on the same test images (a statistic the
paper lacks).

The paired bootstrap of reproduced runs (protocol §5): the runs of one dataset score the same
test images, so each run's replicate values of a headline metric are computed under the same
image indices ``bootstrap_indices(N, replicates, seed)`` (``replicate_matrices`` and
``compute_metrics_batch`` of ``densebench.evaluate``; the replicate mean is the run's
``boot_mean``). For a pair (a, b) the per-replicate difference d = a - b gives the mean
difference, the 95% percentile interval (``np.percentile``, linear, as the published CIs) and
the two-sided bootstrap p = min(1, 2 min(P(d <= 0), P(d >= 0))). ``significant``: the interval
excludes 0. ``p_holm`` adjusts p by Holm's step-down within each (dataset, comparison) family.
Pairs: every two models within each strategy ("models"), every two strategies within each model
("strategies"); a is the one listed first (grid order when a grid is given, else the order of
the mapping).

Small n (``densebench.report.reliability``): p counts replicates, so an estimate under
``p_floor`` = 1/replicates (0: no replicate on one side) reads ``< p_floor`` in the Markdown
(never 0), and its Holm value ``< p_holm_floor``, Holm's adjustment of the p-values each raised
to at least the floor (a bound on the adjusted p). The CSV keeps the estimates. A dataset of
fewer than 10 test images has ``unreliable`` rows, marked with a double dagger and a footnote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from densebench.atomic import write_table, write_text
from densebench.evaluate.bootstrap import replicate_matrices
from densebench.evaluate.confusion import load_confusion, run_keys
from densebench.evaluate.metrics import METRICS, check_definitions, compute_metrics_batch
from densebench.report.formats import format_p
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC
from densebench.report.reliability import (
    below_floor,
    format_bootstrap_p,
    format_bound,
    is_unreliable,
    marked,
    p_floor,
    small_n_note,
)

if TYPE_CHECKING:
    import pandas as pd

CI_PERCENTILES: tuple[float, float] = (2.5, 97.5)
PAIRED_COLUMNS: tuple[str, ...] = (
    "dataset",
    "comparison",
    "a_model",
    "a_strategy",
    "b_model",
    "b_strategy",
    "mean_diff",
    "ci_lower",
    "ci_upper",
    "p_value",
    "significant",
    "n_images",
    "replicates",
    "seed",
    "p_holm",
    "metric",
    "definitions",
    "exclude_background",
    "p_floor",
    "p_holm_floor",
    "unreliable",
)
Run = tuple[str, str]
"""A run of one dataset: (model, strategy)."""


def replicate_values(
    path: Path,
    replicates: int,
    seed: int,
    metric: str = RANK_METRIC,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(sample_ids, the (replicates,) values of ``metric``) of a run's bootstrap replicates."""
    check_definitions(definitions, exclude_background)
    if metric not in METRICS:
        raise ValueError(f"unknown headline metric {metric!r}; one of {list(METRICS)}")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    matrices, sample_ids, _ = load_confusion(Path(path))
    try:
        summed = replicate_matrices(matrices, replicates, seed)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    options = {"definitions": definitions, "exclude_background": exclude_background}
    return sample_ids, compute_metrics_batch(summed, **options)[metric]


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float | bool]:
    """Mean, 95% percentile CI, two-sided bootstrap p and significance of a - b per replicate."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[~np.isnan(d)]
    if d.size == 0:
        nan = math.nan
        return {
            "mean_diff": nan,
            "ci_lower": nan,
            "ci_upper": nan,
            "p_value": nan,
            "significant": False,
        }
    lower, upper = np.percentile(d, CI_PERCENTILES)
    p_value = min(1.0, 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return {
        "mean_diff": float(np.mean(d)),
        "ci_lower": float(lower),
        "ci_upper": float(upper),
        "p_value": p_value,
        "significant": bool(lower > 0 or upper < 0),
    }


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def _ordered(keys: Sequence[str], order: Sequence[str] | None) -> list[str]:
    """Unique keys in ``order`` (unknown ones after, first seen first)."""
    unique = list(dict.fromkeys(keys))
    if order is None:
        return unique
    head = [k for k in order if k in unique]
    return head + [k for k in unique if k not in head]


def _check_keys(path: Path, dataset: str, model: str, strategy: str) -> None:
    """Raise ValueError when the file's stored run keys are not the run it was given for."""
    try:
        stored = run_keys(path)
    except KeyError:  # a file without run keys: nothing to check
        return
    given = {"dataset": dataset, "model": model, "strategy": strategy}
    if stored != given:
        raise ValueError(f"{path}: confusion file of run {stored}, given as {given}")


def paired_bootstrap(
    confusions: Mapping[Run, Path],
    dataset: str,
    replicates: int,
    seed: int,
    *,
    metric: str = RANK_METRIC,
    definitions: str = "paper",
    exclude_background: bool = False,
    grid: Grid | None = None,
) -> pd.DataFrame:
    """Paired bootstrap differences of one dataset's runs ((model, strategy) -> confusion file).

    Every run must hold the same sample_ids in the same order (else ValueError naming both
    files). Rows: the "models" pairs of each strategy, then the "strategies" pairs of each
    model, ``PAIRED_COLUMNS``; p_holm adjusts within each comparison kind.
    """
    import pandas as pd

    values: dict[Run, np.ndarray] = {}
    first: tuple[Path, np.ndarray] | None = None
    for (model, strategy), path in confusions.items():
        path = Path(path)
        _check_keys(path, dataset, model, strategy)
        ids, vals = replicate_values(
            path, replicates, seed, metric, definitions, exclude_background
        )
        if first is None:
            first = (path, ids)
        elif len(ids) != len(first[1]) or not np.array_equal(ids, first[1]):
            raise ValueError(
                f"{path} and {first[0]} do not hold the same test images in the same order "
                f"({len(ids)} vs {len(first[1])} sample_ids); a paired bootstrap needs them equal"
            )
        values[(model, strategy)] = vals
    models = _ordered([m for m, _ in values], grid.models if grid else None)
    strategies = _ordered([s for _, s in values], grid.strategies if grid else None)
    pairs: list[tuple[str, Run, Run]] = []
    for s in strategies:
        held = [m for m in models if (m, s) in values]
        pairs += [("models", (a, s), (b, s)) for a, b in combinations(held, 2)]
    for m in models:
        held = [s for s in strategies if (m, s) in values]
        pairs += [("strategies", (m, a), (m, b)) for a, b in combinations(held, 2)]
    common = {
        "n_images": 0 if first is None else len(first[1]),
        "replicates": int(replicates),
        "seed": int(seed),
    }
    rows = [
        {
            "dataset": dataset,
            "comparison": kind,
            "a_model": a[0],
            "a_strategy": a[1],
            "b_model": b[0],
            "b_strategy": b[1],
            **paired_difference(values[a], values[b]),
            **common,
        }
        for kind, a, b in pairs
    ]
    frame = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS[:14]))
    floor = p_floor(replicates)
    frame["p_holm"] = np.nan
    holm_floor = pd.Series(np.nan, index=frame.index)
    for _, part in frame.groupby("comparison", sort=False):
        p = part["p_value"].to_numpy()
        frame.loc[part.index, "p_holm"] = holm(p)
        holm_floor[part.index] = holm(np.maximum(p, floor))  # NaN stays NaN
    frame = frame.assign(
        metric=metric,
        definitions=definitions,
        exclude_background=bool(exclude_background),
        p_floor=floor,
        p_holm_floor=holm_floor,
        unreliable=is_unreliable(common["n_images"]),
    )
    return frame.astype({"significant": bool, "unreliable": bool})


def paired_bootstrap_files(
    paths: Sequence[Path],
    replicates: int,
    seed: int,
    *,
    metric: str = RANK_METRIC,
    definitions: str = "paper",
    exclude_background: bool = False,
    grid: Grid | None = None,
) -> pd.DataFrame:
    """Paired bootstrap of confusion files grouped by the dataset of their stored run keys."""
    import pandas as pd

    by_dataset: dict[str, dict[Run, Path]] = {}
    for path in map(Path, paths):
        keys = run_keys(path)
        runs = by_dataset.setdefault(keys["dataset"], {})
        run = (keys["model"], keys["strategy"])
        if run in runs:
            raise ValueError(f"{path} and {runs[run]}: two confusion files of run {keys}")
        runs[run] = path
    options = {
        "metric": metric,
        "definitions": definitions,
        "exclude_background": exclude_background,
        "grid": grid,
    }
    datasets = _ordered(list(by_dataset), grid.datasets if grid else None)
    frames = [paired_bootstrap(by_dataset[d], d, replicates, seed, **options) for d in datasets]
    if not frames:
        return pd.DataFrame({c: [] for c in PAIRED_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _named(frame: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """The paired table with display names beside the keys."""
    out = frame.copy()
    names = {
        "dataset": "datasets",
        "a_model": "models",
        "a_strategy": "strategies",
        "b_model": "models",
        "b_strategy": "strategies",
    }
    for column, axis in reversed(names.items()):
        at = out.columns.get_loc(column) + 1
        out.insert(at, f"{column}_name", [grid.name(axis, str(k)) for k in out[column]])
    return out


def _num(value: float, digits: int = 4) -> str:
    """A number to ``digits`` decimals, "n/a" when missing."""
    return "n/a" if value is None or math.isnan(float(value)) else f"{float(value):.{digits}f}"


def paired_markdown(frame: pd.DataFrame, grid: Grid) -> str:
    """The paired differences as Markdown: per dataset, models per strategy, then strategies."""
    named = _named(frame, grid)
    metric = str(frame["metric"].iloc[0]) if len(frame) else RANK_METRIC
    lines = [f"# Paired bootstrap differences of {metric}", ""]
    heads = {
        "models": ("Models within each strategy", "Strategy", "a_strategy_name", "model"),
        "strategies": ("Strategies within each model", "Model", "a_model_name", "strategy"),
    }
    for _, part in named.groupby("dataset", sort=False):
        rec0 = part.iloc[0]
        small = small_n_note([rec0["n_images"]])
        lines += [
            f"## {rec0['dataset_name']}",
            "",
            f"{int(rec0['n_images'])} test images, {int(rec0['replicates'])} replicates, "
            f"seed {int(rec0['seed'])}.",
            "",
            *([small, ""] if small else []),
        ]
        for kind, (title, within, within_col, axis) in heads.items():
            rows = part[part["comparison"] == kind]
            if rows.empty:
                continue
            lines += [
                f"### {title}",
                "",
                f"| {within} | A | B | Δ (A - B) [95% CI] | p | p (Holm) | Significant |",
                "|---|---|---|---:|---:|---:|:---:|",
            ]
            for r in rows.to_dict("records"):
                cells = [
                    r[within_col],
                    r[f"a_{axis}_name"],
                    r[f"b_{axis}_name"],
                    f"{_num(r['mean_diff'])} [{_num(r['ci_lower'])}, {_num(r['ci_upper'])}]",
                    *_p_cells(r),
                    marked("yes" if r["significant"] else "no", r["n_images"]),
                ]
                lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
            lines.append("")
    lines.append(
        "Δ: mean over the bootstrap replicates (the same test-image draws for every run of a "
        "dataset) of A - B, with the 2.5th/97.5th percentiles; p: two-sided bootstrap p-value "
        "(< 1/B, B the replicates: no replicate on one side of 0); p (Holm): adjusted within "
        "each dataset and comparison kind (< bound: Holm's adjustment with each p raised to 1/B); "
        "significant: the interval excludes 0."
    )
    return "\n".join(lines) + "\n"


def _p_cells(row: Mapping[str, Any]) -> list[str]:
    """The p and Holm p of a paired row for reading: ``< floor`` (``< bound``) where the
    estimate is under the floor 1/replicates, never 0."""
    p = format_bootstrap_p(row["p_value"], row["p_floor"])
    if below_floor(row["p_value"], row["p_floor"]):
        return [p, format_bound(row["p_holm_floor"])]
    return [p, format_p(row["p_holm"])]


def write_paired(frame: pd.DataFrame, grid: Grid, csv: Path, md: Path) -> list[Path]:
    """Write the paired table as CSV (keys and display names) and Markdown; return the paths."""
    write_table(_named(frame, grid), Path(csv))
    write_text(paired_markdown(frame, grid), Path(md))
    return [Path(csv), Path(md)]
