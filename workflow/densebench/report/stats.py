"""Significance statistics the paper lacks: Friedman/Nemenyi over models, paired bootstrap.

**Friedman test and Nemenyi critical difference** (Demšar 2006, "Statistical comparisons of
classifiers over multiple data sets", JMLR 7:1-30, §3.2.2), on the ``Mean_Dice`` mean
(``boot_mean``) of the tidy table's headline rows inside the ``Grid``:

- treatments = the grid's k models; blocks = the (dataset, strategy) pairs where *every* grid
  model has a value. A pair with some but not all models is dropped and counted
  (``dropped_blocks``); a pair without any value is no block at all.
- Within a block the models are ranked 1 = best (highest mean), ties sharing the average of the
  positions they occupy (``scipy.stats.rankdata(method="average")``). This differs on purpose
  from the site's positional ranks (``densebench.report.ranking.model_ranks``, the authors'
  rule: ties broken by model order): the Friedman statistic's null distribution assumes
  exchangeable ranks, and a rule that favours the model listed first would bias it. Without ties
  (true of the published Mean_Dice, protocol §6) both give the same ranks.
- chi2_F = [12 / (N k (k+1)) sum_j R_j^2 - 3 N (k+1)] / C, R_j the rank sum of model j over the
  N blocks and C = 1 - sum (t^3 - t) / (N k (k^2 - 1)) the tie correction over the tie groups of
  size t (as ``scipy.stats.friedmanchisquare``); p from chi-square with k - 1 df.
- Iman-Davenport F_F = (N - 1) chi2_F / (N (k - 1) - chi2_F), F with (k - 1, (k - 1)(N - 1)) df.
- Nemenyi CD = q_alpha sqrt(k (k + 1) / (6 N)), q_alpha = studentized range quantile
  ``studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)`` (Demšar's Table 5a: 2.569 for k = 4).
  Two models differ significantly when their average ranks differ by at least CD. As Demšar
  prescribes the post-hoc test follows a rejected Friedman null; it is reported regardless.
- cliques: the maximal runs of models, consecutive in average rank, whose extreme average ranks
  differ by less than CD (the thick bars of the CD diagram); a model in no longer run forms a
  clique alone, so every model is in at least one. ``groups`` labels them a, b, ... (models that
  share a letter do not differ significantly).

**Paired bootstrap** of reproduced runs (protocol §5): the runs of one dataset score the same
test images, so each run's replicate values of a headline metric are computed under the same
image indices ``bootstrap_indices(N, replicates, seed)`` (``replicate_matrices`` and
``compute_metrics_batch`` of ``densebench.evaluate``; the replicate mean is the run's
``boot_mean``). For a pair (a, b) the per-replicate difference d = a - b gives the mean
difference, the 95% percentile interval (``np.percentile``, linear, as the published CIs) and
the two-sided bootstrap p = min(1, 2 min(P(d <= 0), P(d >= 0))); p = 0 means no replicate on one
side (p < 2 / replicates). ``significant``: the interval excludes 0. ``p_holm`` adjusts p by
Holm's step-down within each (dataset, comparison) family. Pairs: every two models within each
strategy ("models"), every two strategies within each model ("strategies"); a is the one listed
first (grid order when a grid is given, else the order of the mapping).
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.atomic import write_table, write_text
from densebench.evaluate.bootstrap import replicate_matrices
from densebench.evaluate.confusion import load_confusion, run_keys
from densebench.evaluate.metrics import METRICS, check_definitions, compute_metrics_batch
from densebench.report.grid import Grid
from densebench.report.ranking import metric_cells
from densebench.report.tables import latex_escape

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

RANK_METRIC = "Mean_Dice"
ALPHA = 0.05
CI_PERCENTILES: tuple[float, float] = (2.5, 97.5)
FRIEDMAN_FILES: tuple[str, ...] = ("friedman.csv", "friedman.md", "friedman.tex")
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
)
CD_WIDTH_IN = 7.0

Block = tuple[str, str]
"""A Friedman block: (dataset, strategy)."""
Run = tuple[str, str]
"""A run of one dataset: (model, strategy)."""


# --------------------------------------------------------------------------------------------
# Friedman test and Nemenyi critical difference
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FriedmanResult:
    """The Friedman test over the complete blocks, with the Nemenyi critical difference."""

    metric: str
    k: int
    n_blocks: int
    dropped_blocks: int
    statistic: float
    p_value: float
    iman_davenport: float
    iman_davenport_p: float
    q_alpha: float
    cd: float
    alpha: float
    average_ranks: dict[str, float]
    """Model -> average rank, best (lowest) first; ties keep the grid's model order."""
    cliques: tuple[tuple[str, ...], ...]
    incomplete: tuple[Block, ...] = field(default=())
    """The dropped (dataset, strategy) blocks, in grid order."""

    @property
    def df(self) -> int:
        """Degrees of freedom of chi2_F."""
        return self.k - 1

    @property
    def iman_davenport_df(self) -> tuple[int, int]:
        """Degrees of freedom of the Iman-Davenport F."""
        return self.k - 1, (self.k - 1) * (self.n_blocks - 1)

    @property
    def best(self) -> str:
        """The model with the lowest average rank."""
        return next(iter(self.average_ranks))

    def behind_best(self, model: str) -> bool:
        """Whether ``model``'s average rank exceeds the best one's by at least CD."""
        return self.average_ranks[model] - self.average_ranks[self.best] >= self.cd


def _blocks(table: pd.DataFrame, grid: Grid, metric: str) -> tuple[pd.DataFrame, tuple[Block, ...]]:
    """Block x model values of the complete blocks (grid order) and the incomplete blocks."""
    import pandas as pd

    cells = metric_cells(table, grid, metric)
    values = cells.pivot(index=["dataset", "strategy"], columns="model", values="boot_mean")
    values = values.reindex(columns=list(grid.models)).astype("float64")
    order = [(d, s) for d in grid.datasets for s in grid.strategies]
    values = values.reindex(pd.MultiIndex.from_tuples(order, names=["dataset", "strategy"]))
    present = values.notna()
    complete = present.all(axis=1)
    incomplete = tuple(values.index[present.any(axis=1) & ~complete])
    values.columns.name = "model"
    return values.loc[complete], incomplete


def _reason(k: int, complete: int, incomplete: int, metric: str) -> str | None:
    """Why the Friedman test cannot run with k models and these block counts, or None."""
    if k < 2:
        return f"the Friedman test compares at least 2 models; the grid has {k}"
    if complete == 0:
        return (
            f"no (dataset, strategy) block has a {metric} value for every one of the {k} models "
            f"({incomplete} incomplete block(s))"
        )
    return None


def friedman_applicable(table: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> str | None:
    """Why the Friedman test cannot run on this table and grid, or None when it can."""
    if len(grid.models) < 2:
        return _reason(len(grid.models), 0, 0, metric)
    values, incomplete = _blocks(table, grid, metric)
    return _reason(len(grid.models), len(values), len(incomplete), metric)


def _complete_blocks(
    table: pd.DataFrame, grid: Grid, metric: str
) -> tuple[pd.DataFrame, tuple[Block, ...]]:
    """``_blocks``, raising ValueError with the reason when the Friedman test cannot run."""
    values, incomplete = _blocks(table, grid, metric)
    reason = _reason(len(grid.models), len(values), len(incomplete), metric)
    if reason is not None:
        raise ValueError(reason)
    return values, incomplete


def block_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks within each row of an (N, k) array: 1 = highest, ties get their average rank."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(values, dtype=np.float64), method="average", axis=1)


def friedman_ranks(table: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> pd.DataFrame:
    """Block x model ranks (1 = best, ties averaged) over the complete blocks, grid order."""
    import pandas as pd

    values, _ = _complete_blocks(table, grid, metric)
    return pd.DataFrame(block_ranks(values.to_numpy()), index=values.index, columns=values.columns)


def friedman_statistic(ranks: np.ndarray) -> tuple[float, float]:
    """Tie-corrected chi2_F of an (N, k) rank matrix and its chi-square p-value (k - 1 df)."""
    from scipy.stats import chi2

    ranks = np.asarray(ranks, dtype=np.float64)
    n, k = ranks.shape
    sums = ranks.sum(axis=0)
    raw = 12.0 / (n * k * (k + 1)) * float(np.sum(sums**2)) - 3.0 * n * (k + 1)
    ties = sum(
        float(np.sum(t**3 - t)) for t in (np.unique(r, return_counts=True)[1] for r in ranks)
    )
    correction = 1.0 - ties / (n * k * (k * k - 1))
    if correction <= 0:  # every block all tied: no information
        return math.nan, math.nan
    statistic = raw / correction
    return statistic, float(chi2.sf(statistic, k - 1))


def iman_davenport(statistic: float, k: int, n: int) -> tuple[float, float]:
    """Iman-Davenport F_F from chi2_F and its p-value with (k - 1, (k - 1)(n - 1)) df."""
    from scipy.stats import f

    if n < 2 or math.isnan(statistic):
        return math.nan, math.nan
    denominator = n * (k - 1) - statistic
    if denominator <= 0:  # perfect agreement of the blocks
        return math.inf, 0.0
    value = (n - 1) * statistic / denominator
    return value, float(f.sf(value, k - 1, (k - 1) * (n - 1)))


def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """Nemenyi's q_alpha for k treatments: studentized range quantile (df = inf) / sqrt(2)."""
    from scipy.stats import studentized_range

    if k < 2:
        raise ValueError(f"the Nemenyi test compares at least 2 treatments; got k = {k}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(studentized_range.ppf(1 - alpha, k, math.inf)) / math.sqrt(2)


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of average ranks for k treatments over n blocks."""
    if n < 1:
        raise ValueError(f"the critical difference needs at least 1 block; got {n}")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def cliques(average_ranks: Mapping[str, float], cd: float) -> tuple[tuple[str, ...], ...]:
    """Maximal runs of models (by average rank) whose extreme ranks differ by less than ``cd``.

    ``average_ranks`` is read best first (ascending rank); a model that is in no longer run
    forms a clique alone.
    """
    names = list(average_ranks)
    ranks = [average_ranks[m] for m in names]
    out: list[tuple[str, ...]] = []
    last_end = -1
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > last_end:  # not inside the previous run
            out.append(tuple(names[i : j + 1]))
            last_end = j
    return tuple(out)


def friedman_test(
    table: pd.DataFrame, grid: Grid, alpha: float = ALPHA, metric: str = RANK_METRIC
) -> FriedmanResult:
    """The Friedman test and Nemenyi CD of the grid's models over the complete blocks."""
    values, incomplete = _complete_blocks(table, grid, metric)
    ranks = block_ranks(values.to_numpy())
    n, k = ranks.shape
    statistic, p_value = friedman_statistic(ranks)
    f_value, f_p = iman_davenport(statistic, k, n)
    q_alpha = nemenyi_q(k, alpha)
    cd = q_alpha * math.sqrt(k * (k + 1) / (6.0 * n))
    means = ranks.mean(axis=0)
    order = sorted(range(k), key=lambda j: (means[j], j))
    average = {str(values.columns[j]): float(means[j]) for j in order}
    return FriedmanResult(
        metric=metric,
        k=k,
        n_blocks=n,
        dropped_blocks=len(incomplete),
        statistic=statistic,
        p_value=p_value,
        iman_davenport=f_value,
        iman_davenport_p=f_p,
        q_alpha=q_alpha,
        cd=cd,
        alpha=alpha,
        average_ranks=average,
        cliques=cliques(average, cd),
        incomplete=incomplete,
    )


def _letters(count: int) -> list[str]:
    """Group labels a, b, ..., z, then g27, g28, ..."""
    letters = string.ascii_lowercase
    return [letters[i] if i < len(letters) else f"g{i + 1}" for i in range(count)]


def model_groups(result: FriedmanResult) -> dict[str, str]:
    """Model -> the letters of the cliques it belongs to (shared letter: no significant gap)."""
    labels = _letters(len(result.cliques))
    return {
        m: "".join(lab for lab, c in zip(labels, result.cliques, strict=True) if m in c)
        for m in result.average_ranks
    }


def friedman_table(result: FriedmanResult, grid: Grid) -> pd.DataFrame:
    """One row per model, best first: average rank, gap to the best, groups, and the test."""
    import pandas as pd

    best = result.average_ranks[result.best]
    groups = model_groups(result)
    rows = [
        {
            "position": i,
            "model": m,
            "model_name": grid.name("models", m),
            "average_rank": r,
            "diff_to_best": r - best,
            "behind_best": result.behind_best(m),
            "groups": groups[m],
        }
        for i, (m, r) in enumerate(result.average_ranks.items(), start=1)
    ]
    summary = {
        "metric": result.metric,
        "k": result.k,
        "n_blocks": result.n_blocks,
        "dropped_blocks": result.dropped_blocks,
        "chi2": result.statistic,
        "df": result.df,
        "p_value": result.p_value,
        "iman_davenport": result.iman_davenport,
        "iman_davenport_p": result.iman_davenport_p,
        "q_alpha": result.q_alpha,
        "cd": result.cd,
        "alpha": result.alpha,
    }
    return pd.DataFrame(rows).assign(**summary)


def _p(value: float) -> str:
    """A p-value: 4 decimals, scientific below 1e-4."""
    if math.isnan(value):
        return "n/a"
    if value == 0:
        return "< 1e-300"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.2e}"


def friedman_summary(result: FriedmanResult) -> str:
    """The test in one sentence: chi2_F, df, p, Iman-Davenport F, CD, N blocks, dropped."""
    df1, df2 = result.iman_davenport_df
    p = _p(result.p_value)
    fp = _p(result.iman_davenport_p)
    return (
        f"Friedman test on {result.metric} over N = {result.n_blocks} (dataset, strategy) blocks "
        f"and k = {result.k} models ({result.dropped_blocks} incomplete block(s) dropped): "
        f"chi2_F = {result.statistic:.2f} (df = {result.df}), p {_rel(p)}; Iman-Davenport "
        f"F_F = {result.iman_davenport:.2f} (df = {df1}, {df2}), p {_rel(fp)}. Nemenyi critical "
        f"difference CD = {result.cd:.3f} at alpha = {result.alpha:g} "
        f"(q_alpha = {result.q_alpha:.3f})."
    )


def _rel(p: str) -> str:
    """'= p' or '< bound' for a formatted p-value."""
    return p if p.startswith("<") else f"= {p}"


def friedman_markdown(result: FriedmanResult, grid: Grid) -> str:
    """The test summary and the per-model table as a Markdown document."""
    rows = friedman_table(result, grid).to_dict("records")
    lines = [
        f"# Friedman test and Nemenyi critical difference ({result.metric})",
        "",
        friedman_summary(result),
        "",
        "| # | Model | Average rank | Δ to best | Behind best | Groups |",
        "|---:|---|---:|---:|:---:|---|",
    ]
    for r in rows:
        name = str(r["model_name"]).replace("|", "\\|")
        behind = "yes" if r["behind_best"] else "no"
        lines.append(
            f"| {r['position']} | {name} | {r['average_rank']:.2f} | {r['diff_to_best']:.2f} | "
            f"{behind} | {r['groups']} |"
        )
    lines += [
        "",
        f"Ranks within each block: 1 = highest {result.metric} mean, ties share their average "
        "rank (not the site's positional ranks). Behind best: the average rank exceeds the best "
        "model's by at least CD (Nemenyi). Models sharing a group letter do not differ "
        "significantly (Demšar 2006, JMLR 7:1-30).",
    ]
    return "\n".join(lines) + "\n"


def _tex_p(value: float) -> str:
    """A p-value in LaTeX math: '= 0.0123', '= 1.2 \\times 10^{-5}' or '< 10^{-300}'."""
    if math.isnan(value):
        return r"= \text{n/a}"
    if value == 0:
        return "< 10^{-300}"
    if value >= 1e-4:
        return f"= {value:.4f}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return rf"= {mantissa} \times 10^{{{int(exponent)}}}"


def friedman_latex(result: FriedmanResult, grid: Grid) -> str:
    """The per-model table as a booktabs LaTeX table with the test in its caption."""
    rows = friedman_table(result, grid).to_dict("records")
    df1, df2 = result.iman_davenport_df
    caption = (
        f"Friedman test on {latex_escape(result.metric)} over $N = {result.n_blocks}$ "
        f"(dataset, strategy) blocks and $k = {result.k}$ models "
        f"({result.dropped_blocks} incomplete blocks dropped): "
        f"$\\chi^2_F = {result.statistic:.2f}$ (df $= {result.df}$), "
        f"$p {_tex_p(result.p_value)}$; Iman--Davenport $F_F = {result.iman_davenport:.2f}$ "
        f"(df $= {df1}, {df2}$), $p {_tex_p(result.iman_davenport_p)}$. Nemenyi critical "
        f"difference $\\mathrm{{CD}} = {result.cd:.3f}$ at $\\alpha = {result.alpha:g}$. Models "
        "sharing a group letter do not differ significantly."
    )
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        r"\label{tab:friedman}",
        r"\begin{tabular}{rlrrcl}",
        r"\toprule",
        r"\# & Model & Avg.\ rank & $\Delta$ best & Behind best & Groups \\",
        r"\midrule",
    ]
    for r in rows:
        behind = "yes" if r["behind_best"] else "no"
        lines.append(
            f"{r['position']} & {latex_escape(r['model_name'])} & {r['average_rank']:.2f} & "
            f"{r['diff_to_best']:.2f} & {behind} & {r['groups']} \\\\"
        )
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_friedman(
    table: pd.DataFrame,
    grid: Grid,
    out_dir: Path,
    alpha: float = ALPHA,
    metric: str = RANK_METRIC,
) -> list[Path]:
    """Write ``friedman.csv``, ``friedman.md`` and ``friedman.tex`` into out_dir; return them.
    Where the test cannot run (e.g. one model) the three files say why instead."""
    import pandas as pd

    csv, md, tex = (Path(out_dir) / name for name in FRIEDMAN_FILES)
    reason = friedman_applicable(table, grid, metric)
    if reason is not None:
        write_table(pd.DataFrame({"not_applicable": [reason]}), csv)
        write_text(f"# Friedman test\n\nNot applicable: {reason}.\n", md)
        write_text(f"% Friedman test not applicable: {latex_escape(reason)}\n", tex)
        return [csv, md, tex]
    result = friedman_test(table, grid, alpha, metric)
    write_table(friedman_table(result, grid), csv)
    write_text(friedman_markdown(result, grid), md)
    write_text(friedman_latex(result, grid), tex)
    return [csv, md, tex]


def _pack(spans: Sequence[tuple[float, float]], gap: float) -> list[int]:
    """Line index of each (start, end) span, packing non-overlapping spans onto shared lines."""
    ends: list[float] = []
    lines = []
    for start, end in spans:
        for i, last in enumerate(ends):
            if start > last + gap:
                ends[i] = end
                lines.append(i)
                break
        else:
            ends.append(end)
            lines.append(len(ends) - 1)
    return lines


def cd_figure(result: FriedmanResult, grid: Grid) -> Figure:
    """Demšar's critical-difference diagram of a Friedman result (black on white, 7 in wide)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    k = result.k
    width, margin = CD_WIDTH_IN, 1.95
    left, right = margin, CD_WIDTH_IN - margin

    def x(rank: float) -> float:
        return left + (rank - 1) / max(k - 1, 1) * (right - left)

    y_axis, step = 0.95, 0.2
    spans = [
        (x(result.average_ranks[c[0]]), x(result.average_ranks[c[-1]])) for c in result.cliques
    ]
    bars = [(s, e) for s, e in spans if e > s]
    lines = _pack(bars, 0.08)
    y_cliques = [y_axis + 0.15 + i * 0.1 for i in lines]
    y_models = max(y_cliques, default=y_axis) + 0.22
    models = list(result.average_ranks)
    n_left = math.ceil(k / 2)
    height = y_models + max(n_left - 1, k - n_left - 1, 0) * step + 0.25

    fig = Figure(figsize=(width, height), dpi=150)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    line = {"color": "black", "linewidth": 1.0, "solid_capstyle": "butt"}
    ax.plot([left, right], [y_axis, y_axis], **line)
    label_every = 1 if k <= 20 else math.ceil(k / 20)
    for r in range(1, k + 1):
        ax.plot([x(r), x(r)], [y_axis, y_axis - 0.08], **line)
        if (r - 1) % label_every == 0 or r == k:
            ax.text(x(r), y_axis - 0.11, str(r), ha="center", va="bottom", fontsize=8)
    for r in np.arange(1.5, k, 1.0):
        ax.plot([x(r), x(r)], [y_axis, y_axis - 0.04], **line)
    cd_end = left + result.cd / max(k - 1, 1) * (right - left)
    ax.plot([left, cd_end], [0.45, 0.45], color="black", linewidth=1.5)
    for end in (left, cd_end):
        ax.plot([end, end], [0.40, 0.50], **line)
    ax.text(
        (left + cd_end) / 2, 0.37, f"CD = {result.cd:.2f}", ha="center", va="bottom", fontsize=8
    )
    title = (
        f"{result.metric.replace('_', ' ')}: Friedman p {_rel(_p(result.p_value))}, "
        f"N = {result.n_blocks} blocks, Nemenyi alpha = {result.alpha:g}"
    )
    ax.text(width / 2, 0.08, title, ha="center", va="top", fontsize=8)
    for (start, end), y in zip(bars, y_cliques, strict=True):
        ax.plot([start - 0.03, end + 0.03], [y, y], color="black", linewidth=3.0)
    for i, model in enumerate(models):
        rank = result.average_ranks[model]
        on_left = i < n_left
        y = y_models + (i if on_left else k - 1 - i) * step
        edge = left - 0.12 if on_left else right + 0.12
        ax.plot([x(rank), x(rank), edge], [y_axis, y, y], color="0.25", linewidth=0.8)
        ax.text(
            edge - 0.05 if on_left else edge + 0.05,
            y,
            f"{grid.name('models', model)} ({rank:.2f})",
            ha="right" if on_left else "left",
            va="center",
            fontsize=8,
            gid=f"model:{model}",
        )
    return fig


def build_cd_diagram(
    table: pd.DataFrame, grid: Grid, alpha: float = ALPHA, metric: str = RANK_METRIC
) -> Figure:
    """The critical-difference diagram of the Friedman test on the table (a figure saying why
    where the test cannot run)."""
    reason = friedman_applicable(table, grid, metric)
    if reason is not None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(CD_WIDTH_IN, 1.5))
        fig.text(0.5, 0.5, f"Critical-difference diagram not applicable:\n{reason}", ha="center")
        return fig
    return cd_figure(friedman_test(table, grid, alpha, metric), grid)


# --------------------------------------------------------------------------------------------
# Paired bootstrap of reproduced runs on the same test images
# --------------------------------------------------------------------------------------------


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
    frame["p_holm"] = np.nan
    for _, part in frame.groupby("comparison", sort=False):
        frame.loc[part.index, "p_holm"] = holm(part["p_value"].to_numpy())
    frame = frame.assign(
        metric=metric, definitions=definitions, exclude_background=bool(exclude_background)
    )
    return frame.astype({"significant": bool})


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
        lines += [
            f"## {rec0['dataset_name']}",
            "",
            f"{int(rec0['n_images'])} test images, {int(rec0['replicates'])} replicates, "
            f"seed {int(rec0['seed'])}.",
            "",
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
                    _p(r["p_value"]) if r["p_value"] != 0 else "0",
                    _p(r["p_holm"]) if r["p_holm"] != 0 else "0",
                    "yes" if r["significant"] else "no",
                ]
                lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
            lines.append("")
    lines.append(
        "Δ: mean over the bootstrap replicates (the same test-image draws for every run of a "
        "dataset) of A - B, with the 2.5th/97.5th percentiles; p: two-sided bootstrap p-value "
        "(0: no replicate on one side); p (Holm): adjusted within each dataset and comparison "
        "kind; significant: the interval excludes 0."
    )
    return "\n".join(lines) + "\n"


def write_paired(frame: pd.DataFrame, grid: Grid, csv: Path, md: Path) -> list[Path]:
    """Write the paired table as CSV (keys and display names) and Markdown; return the paths."""
    write_table(_named(frame, grid), Path(csv))
    write_text(paired_markdown(frame, grid), Path(md))
    return [Path(csv), Path(md)]
