"""How certain the average-rank leaderboard is: per model a 95% interval of its average rank and
of its leaderboard position, and its probability of ranking first (a statistic the paper lacks).

The leaderboard (``densebench.report.ranking``) ranks the models of every (dataset, strategy)
block by their ``RANK_METRIC`` mean and averages each model's ranks over its blocks. Its
uncertainty is bootstrapped in one of two ``SCHEMES``:

- ``image`` (our runs: per-image confusion matrices exist): in each replicate the test images of
  every dataset are drawn with replacement, the *same* draw for every model and every strategy
  of that dataset (they score the same test images), and each cell's Mean Dice is recomputed
  from the summed per-image matrices (``replicate_matrices``, ``compute_metrics_batch``). Every
  dataset has its own stream, ``RandomState(dataset_seed(seed, dataset))``, so datasets are
  drawn independently. The datasets are held fixed: the interval is that of the finite test
  sets.
- ``dataset`` (the published files hold means and CIs only): in each replicate the datasets are
  drawn with replacement (``bootstrap_indices(D, B, seed)``), each drawn dataset bringing *all*
  its strategy blocks, since the blocks of one dataset share its test images and are not
  independent; a model's average rank is then the mean of its block ranks weighted by how often
  each block's dataset was drawn. The cells' values are held fixed: the interval is that of the
  choice of datasets.

``choose_scheme`` takes ``image`` when every ranked cell has a confusion file, otherwise
``dataset`` when the cells without one are published cells (``merged``: the paper's cells have no
per-image data, and resampling the images of our cells alone would treat the published values as
exact), and says why; one of our cells without its file is an error.

Ranks within a block: 1 = highest mean, ties sharing the average of their positions (as the
Friedman ranks of ``densebench.report.stats``: identical models are not separated by the
config's order). Without ties (the published Mean Dice has none, protocol §6) these are the
leaderboard's positional ranks, so the point value is the leaderboard's ``overall`` column.
Per replicate: a model's leaderboard position is 1 + the number of models with a strictly lower
average rank (ties share a position), and the model(s) with the lowest average rank are first,
a tie of t models giving each 1/t. A model none of whose datasets is drawn has no average rank
in that replicate (``defined`` counts the replicates where it has one).

Per model: ``average_rank`` (the point value, from the table), ``rank_lower``/``rank_upper``
(2.5th/97.5th percentiles of the replicates, linear, as every CI of the report), ``position`` and
``position_lower``/``position_upper`` (the 2.5th percentile rounded down and the 97.5th rounded
up: ``np.percentile`` methods "lower"/"higher"), and ``p_first``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.evaluate.bootstrap import bootstrap_indices, replicate_counts, replicate_matrices
from densebench.evaluate.confusion import load_confusion, run_keys
from densebench.evaluate.metrics import compute_metrics_batch
from densebench.report import formats
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC, metric_cells

if TYPE_CHECKING:
    import pandas as pd

SCHEMES: tuple[str, ...] = ("image", "dataset")
"""The resampling schemes: the test images of every dataset, or whole datasets."""
CI_PERCENTILES: tuple[float, float] = (2.5, 97.5)
TIE_TOLERANCE = 1e-9
"""Average ranks closer than this tie (they are means of half-integers)."""
UNCERTAINTY_COLUMNS: tuple[str, ...] = (
    "source",
    "model",
    "model_name",
    "blocks",
    "average_rank",
    "rank_lower",
    "rank_upper",
    "position",
    "position_lower",
    "position_upper",
    "p_first",
    "defined",
    "scheme",
    "scheme_reason",
    "replicates",
    "seed",
    "n_datasets",
    "n_blocks",
    "metric",
)
Block = tuple[str, str]
"""A leaderboard block: (dataset, strategy)."""
Cell = tuple[str, str, str]
"""A cell of the table: (dataset, model, strategy), the order of a run's keys."""


@dataclass(frozen=True)
class Blocks:
    """The leaderboard's blocks and the means of the models in each (NaN: no cell)."""

    keys: tuple[Block, ...]
    """The (dataset, strategy) blocks with at least one model, datasets then strategies in
    grid order."""
    models: tuple[str, ...]
    """The grid's models with at least one cell, in grid order."""
    values: np.ndarray
    """(blocks, models) means of the metric."""

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets of the blocks, in block order, each once."""
        return tuple(dict.fromkeys(d for d, _ in self.keys))

    @property
    def present(self) -> np.ndarray:
        """(blocks, models) whether the model has a cell in the block."""
        return ~np.isnan(self.values)


@dataclass(frozen=True)
class RankUncertainty:
    """The per-model statistics (``UNCERTAINTY_COLUMNS``, best point average rank first) and
    the bootstrap they came from."""

    frame: pd.DataFrame
    scheme: str
    reason: str
    replicates: int
    seed: int
    n_datasets: int
    n_blocks: int
    metric: str = RANK_METRIC


# ---- the blocks and their ranks ---------------------------------------------------------------


def leaderboard_blocks(table: pd.DataFrame, grid: Grid, metric: str = RANK_METRIC) -> Blocks:
    """The (dataset, strategy) blocks of the grid's cells of ``metric`` and their means."""
    cells = metric_cells(table, grid, metric)
    if cells.empty:
        raise ValueError(
            f"rank uncertainty: no {metric} cells in the table for the grid's datasets "
            f"{list(grid.datasets)}, models {list(grid.models)}, strategies {list(grid.strategies)}"
        )
    held = set(zip(cells["dataset"], cells["strategy"], strict=True))
    keys = tuple((d, s) for d in grid.datasets for s in grid.strategies if (d, s) in held)
    models = tuple(m for m in grid.models if m in set(cells["model"]))
    row = {k: i for i, k in enumerate(keys)}
    column = {m: j for j, m in enumerate(models)}
    values = np.full((len(keys), len(models)), np.nan)
    for d, s, m, v in zip(
        cells["dataset"], cells["strategy"], cells["model"], cells["boot_mean"], strict=True
    ):
        values[row[(d, s)], column[m]] = float(v)
    return Blocks(keys, models, values)


def tie_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along the last axis: 1 = highest value, ties share the average of their positions,
    NaN (no value) stays NaN and is not ranked."""
    v = np.asarray(values, dtype=np.float64)
    higher = (v[..., None, :] > v[..., :, None]).sum(axis=-1)
    equal = (v[..., None, :] == v[..., :, None]).sum(axis=-1)  # itself included
    return np.where(np.isnan(v), np.nan, 1.0 + higher + 0.5 * (equal - 1))


def weighted_average_ranks(ranks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, models) average ranks: per replicate the mean of each model's block ranks, block n
    counted ``weights[b, n]`` times. ``ranks`` is (blocks, models), the same in every replicate,
    or (B, blocks, models); NaN where a model has no counted block."""
    r = np.asarray(ranks, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    present = (~np.isnan(r)).astype(np.float64)
    filled = np.nan_to_num(r, nan=0.0)
    if r.ndim == 2:
        total, count = w @ filled, w @ present
    else:
        total = np.einsum("bn,bnk->bk", w, filled)
        count = np.einsum("bn,bnk->bk", w, present)
    out = np.full(total.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


# ---- the two resampling schemes -----------------------------------------------------------------


def dataset_weights(blocks: Blocks, replicates: int, seed: int) -> np.ndarray:
    """(B, blocks) how often each block's dataset is drawn in each replicate of the datasets
    drawn with replacement (``bootstrap_indices(D, B, seed)``): a dataset brings all its blocks."""
    datasets = blocks.datasets
    counts = replicate_counts(bootstrap_indices(len(datasets), replicates, seed), len(datasets))
    column = {d: i for i, d in enumerate(datasets)}
    return counts[:, [column[d] for d, _ in blocks.keys]].astype(np.float64)


def dataset_seed(seed: int, dataset: str) -> int:
    """The seed of a dataset's own image stream: from the bootstrap seed and the dataset's name
    (not its position, so adding a dataset changes no other dataset's draws)."""
    sequence = np.random.SeedSequence([int(seed), zlib.crc32(dataset.encode())])
    return int(sequence.generate_state(1)[0])


def image_replicate_values(
    blocks: Blocks,
    confusions: Mapping[Cell, Path],
    replicates: int,
    seed: int,
    *,
    metric: str = RANK_METRIC,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> np.ndarray:
    """(B, blocks, models) the metric of every cell recomputed from its per-image confusion
    matrices under the replicate draws of its dataset, shared by every run of that dataset (each
    run must hold the same test images in the same order)."""
    out = np.full((replicates, *blocks.values.shape), np.nan)
    present = blocks.present
    options = {"definitions": definitions, "exclude_background": exclude_background}
    for dataset in blocks.datasets:
        first: tuple[Path, np.ndarray] | None = None
        stream = dataset_seed(seed, dataset)
        for n, (d, strategy) in enumerate(blocks.keys):
            if d != dataset:
                continue
            for j, model in enumerate(blocks.models):
                if not present[n, j]:
                    continue
                path = Path(confusions[(dataset, model, strategy)])
                matrices, ids, _ = load_confusion(path)
                if first is None:
                    first = (path, ids)
                elif len(ids) != len(first[1]) or not np.array_equal(ids, first[1]):
                    raise ValueError(
                        f"{path} and {first[0]} do not hold the same test images of {dataset} in "
                        f"the same order ({len(ids)} vs {len(first[1])} sample_ids); rescore both "
                        "runs on the same test split"
                    )
                try:
                    summed = replicate_matrices(matrices, replicates, stream)
                except ValueError as err:
                    raise ValueError(f"{path}: {err}") from err
                out[:, n, j] = compute_metrics_batch(summed, **options)[metric]
    return out


def confusion_map(paths: Sequence[Path]) -> dict[Cell, Path]:
    """The confusion files by the (dataset, model, strategy) their stored run keys name."""
    out: dict[Cell, Path] = {}
    for path in map(Path, paths):
        keys = run_keys(path)
        cell = (keys["dataset"], keys["model"], keys["strategy"])
        if cell in out:
            raise ValueError(f"{path} and {out[cell]}: two confusion files of run {keys}")
        out[cell] = path
    return out


def choose_scheme(
    table: pd.DataFrame,
    grid: Grid,
    confusions: Mapping[Cell, Path],
    scheme: str = "auto",
    metric: str = RANK_METRIC,
) -> tuple[str, str]:
    """(scheme, why): ``image`` when every ranked cell has a confusion file, else ``dataset``
    when the cells without one are published; ``scheme`` "image" or "dataset" forces one
    (ValueError when "image" lacks files, or when one of our cells lacks its file)."""
    if scheme not in ("auto", *SCHEMES):
        raise ValueError(f"rank uncertainty: scheme {scheme!r}, one of auto, {', '.join(SCHEMES)}")
    cells = metric_cells(table, grid, metric)
    keys = list(zip(cells["dataset"], cells["model"], cells["strategy"], strict=True))
    sources = cells["source"].astype(str).tolist() if "source" in cells else ["?"] * len(keys)
    missing = [(k, s) for k, s in zip(keys, sources, strict=True) if k not in confusions]
    if scheme == "dataset":
        return "dataset", "dataset-level resampling was asked for"
    if not missing:
        return "image", (
            f"every one of the {len(keys)} cells has its per-image confusion matrices "
            "(results/runs/<dataset>/<model>/<strategy>/confusion.npz)"
        )
    ours = [k for k, s in missing if s != "published"]
    if scheme == "image" or ours:
        first = ours[0] if ours else missing[0][0]
        count = len(ours) if ours else len(missing)
        raise ValueError(
            f"rank uncertainty: {count} cell(s) without a confusion file, e.g. run "
            f"(dataset, model, strategy) = {first}: pass results/runs/{first[0]}/{first[1]}/"
            f"{first[2]}/confusion.npz (image-level), or resample whole datasets (scheme dataset)"
        )
    if len(missing) == len(keys):
        return "dataset", (
            f"the published files hold means and CIs only, no per-image confusion matrices "
            f"({len(keys)} cells)"
        )
    return "dataset", (
        f"{len(missing)} of the {len(keys)} cells are published means and CIs without per-image "
        "confusion matrices; resampling the images of our cells alone would treat the "
        "published values as exact"
    )


# ---- the statistics ---------------------------------------------------------------------------


def leaderboard_positions(average: np.ndarray) -> np.ndarray:
    """Position on the leaderboard along the last axis: 1 + the number of models with a
    strictly lower average rank (ties share one); NaN where the average rank is NaN."""
    a = np.asarray(average, dtype=np.float64)
    better = (a[..., None, :] < a[..., :, None] - TIE_TOLERANCE).sum(axis=-1)
    return np.where(np.isnan(a), np.nan, 1.0 + better)


def first_shares(average: np.ndarray) -> np.ndarray:
    """(B, models) each model's share of first place per replicate: 1/t for each of the t
    models tied at the lowest average rank, 0 otherwise (NaN average ranks never first)."""
    a = np.asarray(average, dtype=np.float64)
    defined = ~np.isnan(a)
    best = np.min(np.where(defined, a, np.inf), axis=-1, keepdims=True)
    first = defined & (a <= best + TIE_TOLERANCE)
    tied = first.sum(axis=-1, keepdims=True)
    return np.divide(first, tied, out=np.zeros(a.shape), where=tied > 0)


def _percentiles(values: np.ndarray, method: tuple[str, str] = ("linear", "linear")) -> tuple:
    """(lower, upper) percentiles of the defined values (NaN when none)."""
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        return math.nan, math.nan
    lower = np.percentile(defined, CI_PERCENTILES[0], method=method[0])
    upper = np.percentile(defined, CI_PERCENTILES[1], method=method[1])
    return float(lower), float(upper)


def summarise_ranks(point: np.ndarray, replicates: np.ndarray) -> dict[str, np.ndarray]:
    """Per model (the columns of the (models,) ``point`` and (B, models) ``replicates`` average
    ranks): point, intervals of the average rank and of the position, P(first), defined."""
    point = np.asarray(point, dtype=np.float64)
    reps = np.asarray(replicates, dtype=np.float64)
    positions = leaderboard_positions(reps)
    rank_ci = [_percentiles(reps[:, j]) for j in range(reps.shape[1])]
    position_ci = [_percentiles(positions[:, j], ("lower", "higher")) for j in range(reps.shape[1])]
    return {
        "average_rank": point,
        "rank_lower": np.array([c[0] for c in rank_ci]),
        "rank_upper": np.array([c[1] for c in rank_ci]),
        "position": leaderboard_positions(point),
        "position_lower": np.array([c[0] for c in position_ci]),
        "position_upper": np.array([c[1] for c in position_ci]),
        "p_first": first_shares(reps).mean(axis=0),
        "defined": (~np.isnan(reps)).sum(axis=0),
    }


def replicate_average_ranks(
    blocks: Blocks,
    scheme: str,
    replicates: int,
    seed: int,
    confusions: Mapping[Cell, Path] | None = None,
    **options: str | bool,
) -> np.ndarray:
    """(B, models) the average ranks of the bootstrap replicates under ``scheme``; ``options``
    (metric, definitions, exclude_background) recompute the image-level cells."""
    if replicates < 1:
        raise ValueError(f"rank uncertainty: replicates must be >= 1, got {replicates}")
    if scheme == "dataset":
        weights = dataset_weights(blocks, replicates, seed)
        return weighted_average_ranks(tie_ranks(blocks.values), weights)
    if scheme != "image":
        raise ValueError(f"rank uncertainty: scheme {scheme!r}, one of {', '.join(SCHEMES)}")
    values = image_replicate_values(blocks, confusions or {}, replicates, seed, **options)
    ranks = np.stack([tie_ranks(values[:, n]) for n in range(len(blocks.keys))], axis=1)
    return weighted_average_ranks(ranks, np.ones((replicates, len(blocks.keys))))


def rank_uncertainty(
    table: pd.DataFrame,
    grid: Grid,
    replicates: int = 1000,
    seed: int = 42,
    *,
    confusions: Mapping[Cell, Path] | None = None,
    scheme: str = "auto",
    metric: str = RANK_METRIC,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> RankUncertainty:
    """The leaderboard's rank uncertainty of a source's table: the scheme ``choose_scheme``
    picks from the ``confusions`` ((dataset, model, strategy) -> confusion.npz) given."""
    import pandas as pd

    confusions = dict(confusions or {})
    chosen, reason = choose_scheme(table, grid, confusions, scheme, metric)
    blocks = leaderboard_blocks(table, grid, metric)
    point = weighted_average_ranks(tie_ranks(blocks.values), np.ones((1, len(blocks.keys))))[0]
    options = {
        "metric": metric,
        "definitions": definitions,
        "exclude_background": exclude_background,
    }
    reps = replicate_average_ranks(blocks, chosen, replicates, seed, confusions, **options)
    stats = summarise_ranks(point, reps)
    cells = metric_cells(table, grid, metric)
    sources = cells.groupby("model")["source"].agg(lambda s: "+".join(sorted(set(map(str, s)))))
    frame = pd.DataFrame(
        {
            "source": [sources.get(m, "") for m in blocks.models],
            "model": list(blocks.models),
            "model_name": [grid.name("models", m) for m in blocks.models],
            "blocks": blocks.present.sum(axis=0).astype(int),
            **stats,
        }
    )
    frame = frame.assign(
        scheme=chosen,
        scheme_reason=reason,
        replicates=int(replicates),
        seed=int(seed),
        n_datasets=len(blocks.datasets),
        n_blocks=len(blocks.keys),
        metric=metric,
    ).astype({"defined": int})
    frame = frame.sort_values("average_rank", kind="stable").reset_index(drop=True)
    return RankUncertainty(
        frame.loc[:, list(UNCERTAINTY_COLUMNS)],
        chosen,
        reason,
        int(replicates),
        int(seed),
        len(blocks.datasets),
        len(blocks.keys),
        metric,
    )


# ---- the table ---------------------------------------------------------------------------------


def scheme_note(result: RankUncertainty) -> str:
    """What was resampled, how, and why (the table's note and the figure's)."""
    common = f"{result.replicates} bootstrap replicates (seed {result.seed})"
    if result.scheme == "image":
        how = (
            f"Image-level bootstrap, {common}: in each replicate the test images of each dataset "
            f"({result.n_datasets} in all) are drawn with replacement, the same draw for every "
            "model and strategy of that dataset (they share its test images; one stream per "
            f"dataset), and every cell's {result.metric} is recomputed from its per-image "
            "confusion matrices; the datasets are held fixed."
        )
    else:
        how = (
            f"Dataset-level bootstrap, {common}: in each replicate the datasets "
            f"({result.n_datasets} in all) are drawn with replacement, each drawn dataset "
            f"bringing all its strategy blocks ({result.n_blocks} blocks in all), because the "
            "blocks of one dataset share its test images and are not independent; each cell's "
            "value is held fixed (its own test-set uncertainty is not included)."
        )
    return f"{how} Why this scheme: {result.reason}."


def rank_note(result: RankUncertainty) -> str:
    """The table's note: ranks, intervals, P(first), and the scheme."""
    return (
        f"Average rank by {result.metric} over the (dataset, strategy) blocks (1 = highest mean; "
        "ties share their average position, so without ties these are the leaderboard's ranks) "
        "with its 95% bootstrap interval (2.5th-97.5th percentile); position on the leaderboard "
        "(ties share one) with its interval (2.5th/97.5th percentiles taken outward, as replicate "
        "positions); "
        "P(first): share of replicates in which the model has the lowest average rank (ties "
        f"split evenly). {scheme_note(result)}"
    )


def _num(value: float, digits: int) -> str:
    """A number to ``digits`` decimals, "n/a" when missing."""
    return "n/a" if math.isnan(float(value)) else f"{float(value):.{digits}f}"


def _interval(point: float, lower: float, upper: float, digits: int) -> str:
    """``point [lower, upper]`` to ``digits`` decimals."""
    return f"{_num(point, digits)} [{_num(lower, digits)}, {_num(upper, digits)}]"


def uncertainty_rows(result: RankUncertainty) -> tuple[list[str], list[list[str]]]:
    """Header and plain-text cells of the table, best point average rank first."""
    header = [
        "#",
        "Model",
        "Average rank [95% interval]",
        "Position [95% interval]",
        "P(first)",
        "Blocks",
    ]
    rows = [
        [
            str(i),
            str(r["model_name"]),
            _interval(r["average_rank"], r["rank_lower"], r["rank_upper"], 2),
            _interval(r["position"], r["position_lower"], r["position_upper"], 0),
            _num(r["p_first"], 3),
            str(int(r["blocks"])),
        ]
        for i, r in enumerate(result.frame.to_dict("records"), start=1)
    ]
    return header, rows


def write_rank_uncertainty(
    table: pd.DataFrame,
    grid: Grid,
    stem: Path,
    replicates: int = 1000,
    seed: int = 42,
    **options: object,
) -> list[Path]:
    """Write the rank uncertainty of a source's table as ``<stem>.csv``, ``.md`` and ``.tex``
    (``options``: the keywords of ``rank_uncertainty``); return the paths."""
    result = rank_uncertainty(table, grid, replicates, seed, **options)  # type: ignore[arg-type]
    header, rows = uncertainty_rows(result)
    title = f"Rank uncertainty of the average-rank leaderboard ({result.scheme}-level bootstrap)"
    return formats.write_text_table(
        result.frame, header, rows, title, rank_note(result), "tab:rank-uncertainty", Path(stem)
    )
