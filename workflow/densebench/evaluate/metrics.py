"""Segmentation metrics and the image-level bootstrap of PFM-DenseBench (protocol §5).

All metrics are computed from one confusion matrix M (rows = ground truth, columns = prediction)
summed over the images of a test set. With TP_c = M_cc, FP_c = col_c - TP_c, FN_c = row_c - TP_c
and EPS = 1e-8, two sets of definitions are available (keyword ``definitions``).

``definitions="paper"`` (the default; the authors' code, reproduced bit for bit): each per-class
value is averaged over its own "valid" class set, background (class 0) always included:

- mIoU, Mean_Dice: classes with TP+FP+FN > 0;
- Mean_Accuracy, Mean_Recall: classes with TP+FN > 0 (identical formula, hence identical values);
- Mean_Precision: classes with TP+FP > 0 (a present but never-predicted class is dropped);
- Mean_F1: classes with P_c+R_c > 0 (i.e. TP_c > 0) of 2 P_c R_c / (P_c + R_c + EPS), which drops
  the never-hit classes and so inflates it (Mean_F1 = Mean_Dice |V_Dice| / |V_F1|).

Pixel_Accuracy = sum TP / (sum M + EPS); Frequency_Weighted_IoU = sum_c (row_c / (sum M + EPS))
IoU_c with IoU_c = 0 for invalid classes (the EPS in the weights' denominator is the authors'
``weights = class_frequencies / (total_pixels + 1e-8)``).

Per-class values (``CLASS_METRICS``; the authors' ``IoU_Class_c``, ``Dice_Class_c``,
``Precision_Class_c``, ``Recall_Class_c``, ``F1_Class_c``), for every class c: IoU_c, Dice_c,
P_c = TP/(TP+FP+EPS), R_c = TP/(TP+FN+EPS) and F1_c = 2 P_c R_c / (P_c + R_c + EPS), each set to
0 outside its valid set (IoU/Dice: TP+FP+FN = 0; P: TP+FP = 0; R: TP+FN = 0; F1: P+R = 0). The
zeros are reported and enter the bootstrap like any value.

``definitions="standard"`` (the ``corrected`` protocol): one valid set for every per-class mean,
V = {c : TP_c + FP_c + FN_c > 0} (classes in the ground truth or the prediction):

- mIoU = mean over V of TP/(TP+FP+FN+EPS); Mean_Dice = mean over V of 2TP/(2TP+FP+FN+EPS)
  (both as in the paper);
- Mean_Precision = mean over V of TP/(TP+FP+EPS): a present but never-predicted class counts 0;
- Mean_Recall = Mean_Accuracy = mean over V of TP/(TP+FN+EPS): a predicted but absent class
  counts 0;
- Mean_F1 = mean over V of 2TP/(2TP+FP+FN+EPS), i.e. exactly Mean_Dice;
- Pixel_Accuracy and Frequency_Weighted_IoU as in the paper (EPS in both denominators).

Per-class values under ``"standard"``: IoU_c, Dice_c, P_c, R_c as above and F1_c = Dice_c for
c in V; NaN (undefined, not 0) for c outside V. A class's bootstrap statistics are taken over
the replicates in which it is defined (NaN if none).

``exclude_background=True`` (only with ``"standard"``; the paper always includes class 0) removes
class 0 from V for every per-class mean (mIoU, Dice, Precision, Recall/Accuracy, F1); from the
Frequency_Weighted_IoU sum, whose frequencies become relative to the non-background ground-truth
pixels, sum_{c>=1} (row_c / (sum_{c>=1} row_k + EPS)) IoU_c; and turns Pixel_Accuracy into
foreground pixel accuracy, sum_{c>=1} TP_c / (sum_{c>=1} row_c + EPS). Background pixels
predicted as a foreground class still count as that class's false positives. Class 0's
per-class values are then NaN (not scored).

Conventions (not in the paper, which never meets the cases): a mean over an empty valid set is
0.0 (e.g. an all-zero matrix, or a background-only one with the background excluded);
Frequency_Weighted_IoU and Pixel_Accuracy are 0.0 through EPS when their denominator (all
pixels, or the non-background pixels) is 0.

The bootstrap reproduces the authors' random stream: ``RandomState(seed)`` and, per replicate in
order, ``choice(N, N, replace=True)``; the published "mean" is the mean of the replicate values.
The draws depend on (N, replicates, seed) only, so both definitions see the same replicates.
Image index i is the i-th per-image matrix: the authors' test-list order for a store written with
their split list (``DatasetStore.indices``), as in ``infer_bootstrap.py::bootstrap_evaluation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.atomic import atomic_output

if TYPE_CHECKING:
    import pandas as pd

EPS = 1e-8

METRICS: tuple[str, ...] = (
    "mIoU",
    "Pixel_Accuracy",
    "Mean_Accuracy",
    "Frequency_Weighted_IoU",
    "Mean_Dice",
    "Mean_Precision",
    "Mean_Recall",
    "Mean_F1",
)

CLASS_METRICS: tuple[str, ...] = ("IoU", "Dice", "Precision", "Recall", "F1")
"""Per-class metrics: tidy rows (metric, class) = the authors' key ``{metric}_Class_{class}``."""

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

DEFINITIONS: tuple[str, ...] = ("paper", "standard")

# Largest integer below which float64 sums of non-negative integers are exact.
_EXACT_FLOAT_LIMIT = 2**53


def _masked_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Row-wise mean of ``values`` over ``valid`` entries; 0.0 where a row has none."""
    total = np.where(valid, values, 0.0).sum(axis=1)
    count = valid.sum(axis=1)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def check_definitions(definitions: str, exclude_background: bool) -> None:
    """Raise ValueError unless (definitions, exclude_background) is a valid combination."""
    if definitions not in DEFINITIONS:
        valid = ", ".join(repr(name) for name in DEFINITIONS)
        raise ValueError(f"unknown metric definitions {definitions!r}; valid: {valid}")
    if exclude_background and definitions == "paper":
        raise ValueError(
            "exclude_background=True is not available with definitions='paper': the paper's "
            "definitions always include background (class 0); use definitions='standard'"
        )


def _confusion_terms(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return float64 (TP, FP, FN, row) arrays, each (B, C), of a (B, C, C) stack."""
    m = np.asarray(matrices)
    if m.ndim != 3 or m.shape[1] != m.shape[2]:
        raise ValueError(f"expected a (B, C, C) stack of confusion matrices, got {m.shape}")
    m = m.astype(np.float64)
    tp = np.ascontiguousarray(np.diagonal(m, axis1=1, axis2=2))
    row = m.sum(axis=2)
    col = m.sum(axis=1)
    return tp, col - tp, row - tp, row


def _paper_metrics(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, row: np.ndarray
) -> dict[str, np.ndarray]:
    """Return the 8 metrics under the paper's per-metric valid sets (bit-identical to §5).

    Matches ``compute_metrics_from_confusion_matrix`` of the authors' scripts/infer_bootstrap.py.
    """
    total = row.sum(axis=1)

    iou = tp / (tp + fp + fn + EPS)
    dice = 2.0 * tp / (2.0 * tp + fp + fn + EPS)
    precision = tp / (tp + fp + EPS)
    recall = tp / (tp + fn + EPS)
    f1 = 2.0 * precision * recall / (precision + recall + EPS)

    valid_union = (tp + fp + fn) > 0
    valid_gt = (tp + fn) > 0
    valid_pred = (tp + fp) > 0
    valid_f1 = (precision + recall) > 0

    freq = row / (total[:, None] + EPS)
    mean_recall = _masked_mean(recall, valid_gt)
    return {
        "mIoU": _masked_mean(iou, valid_union),
        "Pixel_Accuracy": tp.sum(axis=1) / (total + EPS),
        "Mean_Accuracy": mean_recall,
        "Frequency_Weighted_IoU": (freq * np.where(valid_union, iou, 0.0)).sum(axis=1),
        "Mean_Dice": _masked_mean(dice, valid_union),
        "Mean_Precision": _masked_mean(precision, valid_pred),
        "Mean_Recall": mean_recall.copy(),
        "Mean_F1": _masked_mean(f1, valid_f1),
    }


def _standard_metrics(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, row: np.ndarray, exclude_background: bool
) -> dict[str, np.ndarray]:
    """Return the 8 metrics with one valid set V for every per-class mean (module docstring)."""
    counted = np.ones(tp.shape[1], dtype=bool)
    counted[:1] = not exclude_background
    valid = ((tp + fp + fn) > 0) & counted
    counted_row = np.where(counted, row, 0.0)
    total = counted_row.sum(axis=1)

    iou = tp / (tp + fp + fn + EPS)
    dice = 2.0 * tp / (2.0 * tp + fp + fn + EPS)
    precision = tp / (tp + fp + EPS)
    recall = tp / (tp + fn + EPS)

    freq = counted_row / (total[:, None] + EPS)
    mean_dice = _masked_mean(dice, valid)
    mean_recall = _masked_mean(recall, valid)
    return {
        "mIoU": _masked_mean(iou, valid),
        "Pixel_Accuracy": np.where(counted, tp, 0.0).sum(axis=1) / (total + EPS),
        "Mean_Accuracy": mean_recall,
        "Frequency_Weighted_IoU": (freq * np.where(valid, iou, 0.0)).sum(axis=1),
        "Mean_Dice": mean_dice,
        "Mean_Precision": _masked_mean(precision, valid),
        "Mean_Recall": mean_recall.copy(),
        "Mean_F1": mean_dice.copy(),
    }


def compute_metrics_batch(
    matrices: np.ndarray, *, definitions: str = "paper", exclude_background: bool = False
) -> dict[str, np.ndarray]:
    """Return the 8 metrics (each shape (B,)) of a stack of (B, C, C) confusion matrices."""
    check_definitions(definitions, exclude_background)
    terms = _confusion_terms(matrices)
    if definitions == "paper":
        return _paper_metrics(*terms)
    return _standard_metrics(*terms, exclude_background=exclude_background)


def compute_metrics(
    matrix: np.ndarray, *, definitions: str = "paper", exclude_background: bool = False
) -> dict[str, float]:
    """Return the 8 metrics of one summed C x C confusion matrix (see the module docstring)."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a C x C confusion matrix, got shape {m.shape}")
    batch = compute_metrics_batch(
        m[None], definitions=definitions, exclude_background=exclude_background
    )
    return {name: float(values[0]) for name, values in batch.items()}


def _paper_class_metrics(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class values as ``compute_metrics_from_confusion_matrix`` reports them (0 if invalid)."""
    precision = tp / (tp + fp + EPS)
    recall = tp / (tp + fn + EPS)
    f1 = 2.0 * precision * recall / (precision + recall + EPS)
    union = (tp + fp + fn) > 0
    return {
        "IoU": np.where(union, tp / (tp + fp + fn + EPS), 0.0),
        "Dice": np.where(union, 2.0 * tp / (2.0 * tp + fp + fn + EPS), 0.0),
        "Precision": np.where((tp + fp) > 0, precision, 0.0),
        "Recall": np.where((tp + fn) > 0, recall, 0.0),
        "F1": np.where((precision + recall) > 0, f1, 0.0),
    }


def _standard_class_metrics(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, exclude_background: bool
) -> dict[str, np.ndarray]:
    """Per-class values on the standard valid set V (F1 = Dice); NaN outside V."""
    counted = np.ones(tp.shape[1], dtype=bool)
    counted[:1] = not exclude_background
    valid = ((tp + fp + fn) > 0) & counted
    dice = np.where(valid, 2.0 * tp / (2.0 * tp + fp + fn + EPS), np.nan)
    return {
        "IoU": np.where(valid, tp / (tp + fp + fn + EPS), np.nan),
        "Dice": dice,
        "Precision": np.where(valid, tp / (tp + fp + EPS), np.nan),
        "Recall": np.where(valid, tp / (tp + fn + EPS), np.nan),
        "F1": dice.copy(),
    }


def compute_class_metrics_batch(
    matrices: np.ndarray, *, definitions: str = "paper", exclude_background: bool = False
) -> dict[str, np.ndarray]:
    """Return the per-class ``CLASS_METRICS`` (each shape (B, C)) of a (B, C, C) stack."""
    check_definitions(definitions, exclude_background)
    tp, fp, fn, _ = _confusion_terms(matrices)
    if definitions == "paper":
        return _paper_class_metrics(tp, fp, fn)
    return _standard_class_metrics(tp, fp, fn, exclude_background)


def compute_class_metrics(
    matrix: np.ndarray, *, definitions: str = "paper", exclude_background: bool = False
) -> dict[str, np.ndarray]:
    """Return the per-class ``CLASS_METRICS`` (each shape (C,)) of one C x C matrix."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a C x C confusion matrix, got shape {m.shape}")
    batch = compute_class_metrics_batch(
        m[None], definitions=definitions, exclude_background=exclude_background
    )
    return {name: values[0] for name, values in batch.items()}


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
    per_image: np.ndarray,
    replicates: int = 1000,
    seed: int = 42,
    *,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> dict[str, dict[str, float]]:
    """Return per metric {point, boot_mean, ci_lower, ci_upper, boot_std} of the bootstrap."""
    options = {"definitions": definitions, "exclude_background": exclude_background}
    return bootstrap_all(per_image, replicates, seed, **options)[0]


def bootstrap_classes(
    per_image: np.ndarray,
    replicates: int = 1000,
    seed: int = 42,
    *,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> ClassStats:
    """Return per class metric the list (by class index) of its bootstrap statistics."""
    options = {"definitions": definitions, "exclude_background": exclude_background}
    return bootstrap_all(per_image, replicates, seed, **options)[1]


def load_confusion(confusion_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load (matrices, sample_ids, classes) from a confusion.npz and check their shapes."""
    with np.load(confusion_path, allow_pickle=False) as data:
        missing = {"matrices", "sample_ids", "classes"} - set(data.files)
        if missing:
            raise ValueError(f"{confusion_path}: missing arrays {sorted(missing)}")
        matrices = data["matrices"]
        sample_ids = data["sample_ids"]
        classes = data["classes"]
    n_classes = len(classes)
    if matrices.ndim != 3 or matrices.shape[1:] != (n_classes, n_classes):
        raise ValueError(
            f"{confusion_path}: matrices shape {matrices.shape} does not match {n_classes} classes"
        )
    if len(sample_ids) != matrices.shape[0]:
        raise ValueError(
            f"{confusion_path}: {len(sample_ids)} sample_ids for {matrices.shape[0]} matrices"
        )
    return matrices, sample_ids, classes


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
    common = {
        "n_images": int(matrices.shape[0]),
        "replicates": int(replicates),
        "seed": int(seed),
        "definitions": definitions,
        "exclude_background": bool(exclude_background),
    }
    none = {"class": pd.NA, "class_name": pd.NA}
    rows = [{**dict(keys), "metric": name, **none, **headline[name], **common} for name in METRICS]
    for c, class_name in enumerate(classes):
        for name in CLASS_METRICS:
            label = {"class": c, "class_name": str(class_name)}
            rows.append({**dict(keys), "metric": name, **label, **per_class[name][c], **common})
    table = pd.DataFrame(rows, columns=[*keys, *SCORE_COLUMNS])
    return table.astype({"class": "Int64"})


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as CSV atomically (temp file in the same dir + os.replace)."""
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")
