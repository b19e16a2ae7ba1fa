"""The image-level bootstrap of the metrics and a run's tidy score table (protocol §5).

The bootstrap reproduces the authors' random stream: ``RandomState(seed)`` and, per replicate in
order, ``choice(N, N, replace=True)``; the published "mean" is the mean of the replicate values.
The draws depend on (N, replicates, seed) only, so both definitions see the same replicates.
Image index i is the i-th per-image matrix: the authors' test-list order for a store written with
their split list (``DatasetStore.indices``), as in ``infer_bootstrap.py::bootstrap_evaluation``.

``score_run`` bootstraps one run's confusion file (``densebench.evaluate.confusion``) into tidy
rows: the 8 headline ``METRICS`` and, per class, the ``CLASS_METRICS``, each with its point
value and bootstrap statistics (``STAT_COLUMNS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.evaluate.confusion import load_confusion
from densebench.evaluate.metrics import (
    CLASS_METRICS,
    METRICS,
    check_definitions,
    compute_class_metrics,
    compute_class_metrics_batch,
    compute_metrics,
    compute_metrics_batch,
)

if TYPE_CHECKING:
    import pandas as pd

STAT_COLUMNS: tuple[str, ...] = ("point", "boot_mean", "ci_lower", "ci_upper", "boot_std")
CLASS_COLUMNS: tuple[str, ...] = ("class", "class_name")
"""Class index and name of a per-class row; empty (NA) for the 8 headline ``METRICS``."""
RUN_COLUMNS: tuple[str, ...] = (
    "metric",
    *CLASS_COLUMNS,
    *STAT_COLUMNS,
    "n_images",
    "replicates",
    "seed",
)
# score_run writes these right after RUN_COLUMNS ("seed"); RUN_COLUMNS stays the aggregate schema.
DEFINITION_COLUMNS: tuple[str, ...] = ("definitions", "exclude_background")
SCORE_COLUMNS: tuple[str, ...] = (*RUN_COLUMNS, *DEFINITION_COLUMNS)

# Largest integer below which float64 sums of non-negative integers are exact.
_EXACT_FLOAT_LIMIT = 2**53


def bootstrap_indices(n: int, replicates: int, seed: int) -> np.ndarray:
    """Return the (replicates, n) image indices of the authors' sequential choice() stream."""
    rs = np.random.RandomState(seed)
    # RandomState.choice(n, n, replace=True) draws randint(0, n, size=n); one call of shape
    # (replicates, n) consumes the same stream in the same order (checked in the tests).
    return rs.randint(0, n, size=(replicates, n))


def replicate_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """Return counts[b, i] = multiplicity of image i in replicate b, from (B, N') indices."""
    b = indices.shape[0]
    flat = (indices + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n)


def replicate_matrices(per_image: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """Return the (replicates, C, C) summed confusion matrices of the bootstrap replicates."""
    stack = _check_stack(per_image)
    n, c, _ = stack.shape
    counts = replicate_counts(bootstrap_indices(n, replicates, seed), n)
    flat = stack.reshape(n, c * c)
    # A replicate sums at most n copies of the largest image; below 2**53 float64 BLAS is exact.
    if n * int(flat.sum(axis=1).max(initial=0)) < _EXACT_FLOAT_LIMIT:
        summed = counts.astype(np.float64) @ flat.astype(np.float64)
    else:
        summed = counts.astype(np.int64) @ flat.astype(np.int64)
    return summed.reshape(replicates, c, c)


def _check_stack(per_image: np.ndarray) -> np.ndarray:
    """Validate a (N, C, C) stack of non-negative per-image confusion matrices."""
    stack = np.asarray(per_image)
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"expected per-image matrices of shape (N, C, C), got {stack.shape}")
    if stack.shape[0] == 0:
        raise ValueError("cannot bootstrap an empty set of images")
    if np.any(stack < 0):
        raise ValueError("confusion matrices must be non-negative")
    return stack


def summarise(values: np.ndarray, point: float) -> dict[str, float]:
    """Point value plus the mean, 2.5/97.5 percentiles and std of the replicates defined (not NaN).

    As ``infer_bootstrap.py::bootstrap_evaluation``: ``np.mean``, ``np.percentile`` (linear) and
    ``np.std``; all NaN where no replicate is defined.
    """
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        nan = float("nan")
        return {"point": point, "boot_mean": nan, "ci_lower": nan, "ci_upper": nan, "boot_std": nan}
    lower, upper = np.percentile(defined, [2.5, 97.5])
    return {
        "point": point,
        "boot_mean": float(np.mean(defined)),
        "ci_lower": float(lower),
        "ci_upper": float(upper),
        "boot_std": float(np.std(defined)),
    }


ClassStats = dict[str, list[dict[str, float]]]
"""Per-class bootstrap statistics: metric -> one stats dict per class index."""


def bootstrap_all(
    per_image: np.ndarray,
    replicates: int = 1000,
    seed: int = 42,
    *,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> tuple[dict[str, dict[str, float]], ClassStats]:
    """Bootstrap statistics of the 8 metrics and of the per-class metrics, from one draw."""
    check_definitions(definitions, exclude_background)
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    stack = _check_stack(per_image)
    options = {"definitions": definitions, "exclude_background": exclude_background}
    total = stack.sum(axis=0)
    summed = replicate_matrices(stack, replicates, seed)
    point = compute_metrics(total, **options)
    boot = compute_metrics_batch(summed, **options)
    headline = {name: summarise(boot[name], point[name]) for name in METRICS}
    class_point = compute_class_metrics(total, **options)
    class_boot = compute_class_metrics_batch(summed, **options)
    per_class = {
        name: [
            summarise(class_boot[name][:, c], float(class_point[name][c]))
            for c in range(stack.shape[1])
        ]
        for name in CLASS_METRICS
    }
    return headline, per_class


def bootstrap(
    per_image: np.ndarray, replicates: int = 1000, seed: int = 42, **options: str | bool
) -> dict[str, dict[str, float]]:
    """Return per metric {point, boot_mean, ci_lower, ci_upper, boot_std} of the bootstrap.

    The headline statistics of `bootstrap_all`; `options` are its keywords `definitions` and
    `exclude_background`.
    """
    return bootstrap_all(per_image, replicates, seed, **options)[0]


def scoring_columns(
    n_images: int, replicates: int, seed: int, definitions: str, exclude_background: bool
) -> dict[str, int | str | bool]:
    """The columns every score row of a run repeats: its test images and the bootstrap's
    settings (``RUN_COLUMNS`` after the statistics, then ``DEFINITION_COLUMNS``)."""
    return {
        "n_images": int(n_images),
        "replicates": int(replicates),
        "seed": int(seed),
        "definitions": definitions,
        "exclude_background": bool(exclude_background),
    }


def score_run(
    confusion_path: Path,
    keys: Mapping[str, str],
    replicates: int,
    seed: int,
    *,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> pd.DataFrame:
    """Bootstrap one run's confusion.npz into tidy rows (``SCORE_COLUMNS`` after the keys).

    The 8 headline ``METRICS`` first (class and class_name NA), then per class index c the
    ``CLASS_METRICS`` of class c: 8 + 5 C rows.
    """
    import pandas as pd

    check_definitions(definitions, exclude_background)
    clash = set(keys) & set(SCORE_COLUMNS)
    if clash:
        raise ValueError(f"key columns {sorted(clash)} collide with metric columns")
    matrices, _, classes = load_confusion(Path(confusion_path))
    try:
        headline, per_class = bootstrap_all(
            matrices,
            replicates=replicates,
            seed=seed,
            definitions=definitions,
            exclude_background=exclude_background,
        )
    except ValueError as err:
        raise ValueError(f"{confusion_path}: {err}") from err
    common = scoring_columns(matrices.shape[0], replicates, seed, definitions, exclude_background)
    none = {"class": pd.NA, "class_name": pd.NA}
    rows = [{**dict(keys), "metric": name, **none, **headline[name], **common} for name in METRICS]
    for c, class_name in enumerate(classes):
        for name in CLASS_METRICS:
            label = {"class": c, "class_name": str(class_name)}
            rows.append({**dict(keys), "metric": name, **label, **per_class[name][c], **common})
    table = pd.DataFrame(rows, columns=[*keys, *SCORE_COLUMNS])
    return table.astype({"class": "Int64"})
