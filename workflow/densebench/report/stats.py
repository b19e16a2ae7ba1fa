"""The Friedman test and Nemenyi critical difference (Demšar 2006, JMLR 7:1-30, §3.2.2; the
paper lacks them) and their tables, on the ``RANK_METRIC`` mean (``boot_mean``) of the headline
rows inside the ``Grid`` (paired bootstrap: ``report.paired``; diagram: ``figures.cd_diagram``):

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
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.atomic import write_table, write_text
from densebench.report.formats import format_p, latex_escape, p_relation, tex_p
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC, metric_cells

if TYPE_CHECKING:
    import pandas as pd

ALPHA = 0.05
DEPENDENCE_NOTE = (
    "The blocks are not independent: the strategy blocks of one dataset share its test images "
    "(the paper grid's 90 blocks are 18 datasets x 5 strategies), while the test and the "
    "critical difference take each block as an independent sample, so they overstate the "
    "evidence; the rank-uncertainty table resamples the blocks of each dataset together."
)
"""What the Friedman table's note and caption say of its blocks."""
FRIEDMAN_FILES: tuple[str, ...] = ("friedman.csv", "friedman.md", "friedman.tex")
Block = tuple[str, str]
"""A Friedman block: (dataset, strategy)."""


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


def friedman_summary(result: FriedmanResult) -> str:
    """The test in one sentence: chi2_F, df, p, Iman-Davenport F, CD, N blocks, dropped."""
    df1, df2 = result.iman_davenport_df
    p = format_p(result.p_value)
    fp = format_p(result.iman_davenport_p)
    return (
        f"Friedman test on {result.metric} over N = {result.n_blocks} (dataset, strategy) blocks "
        f"and k = {result.k} models ({result.dropped_blocks} incomplete block(s) dropped): "
        f"chi2_F = {result.statistic:.2f} (df = {result.df}), p {p_relation(p)}; "
        f"Iman-Davenport F_F = {result.iman_davenport:.2f} (df = {df1}, {df2}), "
        f"p {p_relation(fp)}. Nemenyi critical difference CD = {result.cd:.3f} "
        f"at alpha = {result.alpha:g} "
        f"(q_alpha = {result.q_alpha:.3f})."
    )


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
        "significantly (Demšar 2006, JMLR 7:1-30). " + DEPENDENCE_NOTE,
    ]
    return "\n".join(lines) + "\n"


def friedman_latex(result: FriedmanResult, grid: Grid) -> str:
    """The per-model table as a booktabs LaTeX table with the test in its caption."""
    rows = friedman_table(result, grid).to_dict("records")
    df1, df2 = result.iman_davenport_df
    caption = (
        f"Friedman test on {latex_escape(result.metric)} over $N = {result.n_blocks}$ "
        f"(dataset, strategy) blocks and $k = {result.k}$ models "
        f"({result.dropped_blocks} incomplete blocks dropped): "
        f"$\\chi^2_F = {result.statistic:.2f}$ (df $= {result.df}$), "
        f"$p {tex_p(result.p_value)}$; Iman--Davenport $F_F = {result.iman_davenport:.2f}$ "
        f"(df $= {df1}, {df2}$), $p {tex_p(result.iman_davenport_p)}$. Nemenyi critical "
        f"difference $\\mathrm{{CD}} = {result.cd:.3f}$ at $\\alpha = {result.alpha:g}$. Models "
        f"sharing a group letter do not differ significantly. {latex_escape(DEPENDENCE_NOTE)}"
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
