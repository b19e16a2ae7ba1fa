"""Segmentation metrics of confusion matrices (protocol §5): headline, per class, two definitions.

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

The image-level bootstrap of these metrics lives in ``densebench.evaluate.bootstrap``.
"""

from __future__ import annotations

import numpy as np

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

DEFINITIONS: tuple[str, ...] = ("paper", "standard")


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
