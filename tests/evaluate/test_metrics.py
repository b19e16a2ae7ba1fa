"""Tests for densebench.evaluate.metrics and .bootstrap: §5 definitions, bootstrap, scoring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import densebench.evaluate.bootstrap as bootstrap_module
from densebench.atomic import write_table
from densebench.evaluate.bootstrap import (
    RUN_COLUMNS,
    bootstrap,
    bootstrap_all,
    bootstrap_indices,
    replicate_counts,
    replicate_matrices,
    score_run,
)
from densebench.evaluate.metrics import (
    CLASS_METRICS,
    DEFINITIONS,
    EPS,
    METRICS,
    compute_class_metrics,
    compute_class_metrics_batch,
    compute_metrics,
    compute_metrics_batch,
)


def reference_metrics(m: np.ndarray) -> dict[str, float]:
    """Straightforward per-class loop implementation of protocol §5."""
    m = np.asarray(m, dtype=np.int64)
    c = m.shape[0]
    total = int(m.sum())
    iou, dice, acc, prec, f1 = [], [], [], [], []
    fwiou = 0.0
    tp_sum = 0
    for k in range(c):
        tp = int(m[k, k])
        fp = int(m[:, k].sum()) - tp
        fn = int(m[k, :].sum()) - tp
        tp_sum += tp
        p = tp / (tp + fp + EPS)
        r = tp / (tp + fn + EPS)
        if tp + fp + fn > 0:
            iou_k = tp / (tp + fp + fn + EPS)
            iou.append(iou_k)
            dice.append(2 * tp / (2 * tp + fp + fn + EPS))
        else:
            iou_k = 0.0
        fwiou += (tp + fn) / (total + EPS) * iou_k  # the authors' weights: row / (sum + EPS)
        if tp + fn > 0:
            acc.append(r)
        if tp + fp > 0:
            prec.append(p)
        if p + r > 0:
            f1.append(2 * p * r / (p + r + EPS))

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return {
        "mIoU": mean(iou),
        "Pixel_Accuracy": tp_sum / (total + EPS),
        "Mean_Accuracy": mean(acc),
        "Frequency_Weighted_IoU": fwiou,
        "Mean_Dice": mean(dice),
        "Mean_Precision": mean(prec),
        "Mean_Recall": mean(acc),
        "Mean_F1": mean(f1),
    }


def random_matrix(rng: np.random.Generator, c: int) -> np.ndarray:
    """Random confusion matrix with absent, never-predicted and never-hit classes mixed in."""
    m = rng.integers(0, 50, size=(c, c)) * (rng.random((c, c)) < 0.6)
    m[np.arange(c), np.arange(c)] += rng.integers(0, 500, size=c)
    kind = rng.integers(0, 5, size=c)
    for k in range(c):
        if kind[k] == 1:  # absent: zero row and column
            m[k, :] = 0
            m[:, k] = 0
        elif kind[k] == 2:  # never predicted: zero column
            m[:, k] = 0
        elif kind[k] == 3:  # never hit: TP = 0
            m[k, k] = 0
    return m.astype(np.int64)


@pytest.fixture(scope="module")
def matrices() -> list[np.ndarray]:
    """Many random matrices of various sizes, plus edge cases."""
    rng = np.random.default_rng(1234)
    out = [random_matrix(rng, int(rng.integers(1, 25))) for _ in range(400)]
    out += [
        np.zeros((4, 4), dtype=np.int64),
        np.eye(3, dtype=np.int64) * 7,
        np.array([[0, 5], [3, 0]], dtype=np.int64),  # nothing correct
        np.array([[10, 0], [4, 0]], dtype=np.int64),  # class 1 never predicted
    ]
    return out


def test_metric_names_and_order() -> None:
    assert METRICS == (
        "mIoU",
        "Pixel_Accuracy",
        "Mean_Accuracy",
        "Frequency_Weighted_IoU",
        "Mean_Dice",
        "Mean_Precision",
        "Mean_Recall",
        "Mean_F1",
    )
    assert list(compute_metrics(np.eye(2, dtype=np.int64))) == list(METRICS)


def test_metrics_match_reference_loop(matrices: list[np.ndarray]) -> None:
    for m in matrices:
        got = compute_metrics(m)
        want = reference_metrics(m)
        for name in METRICS:
            assert got[name] == pytest.approx(want[name], abs=1e-9, rel=0), (name, m)


def test_edge_cases_cover_the_conventions() -> None:
    assert all(v == 0.0 for v in compute_metrics(np.zeros((3, 3), dtype=np.int64)).values())
    # Class 1 present but never predicted: dropped from Mean_Precision and Mean_F1 only.
    got = compute_metrics(np.array([[10, 0], [4, 0]]))
    assert got["Mean_Precision"] == pytest.approx(10 / 14)
    assert got["Mean_F1"] == pytest.approx(2 * 10 / 24)
    assert got["Mean_Dice"] == pytest.approx(2 * 10 / 24 / 2)
    assert got["Frequency_Weighted_IoU"] == pytest.approx(10 / 14 * 10 / 14)


def test_recall_equals_accuracy_and_f1_dice_ratio(matrices: list[np.ndarray]) -> None:
    checked = 0
    for m in matrices:
        got = compute_metrics(m)
        assert got["Mean_Recall"] == got["Mean_Accuracy"]
        tp = np.diag(m)
        union = tp + (m.sum(0) - tp) + (m.sum(1) - tp)
        n_dice, n_f1 = int((union > 0).sum()), int((tp > 0).sum())
        if n_f1:
            expected = got["Mean_Dice"] * n_dice / n_f1
            # equal up to the EPS terms (2PR/(P+R+EPS) vs 2TP/(2TP+FP+FN+EPS))
            assert got["Mean_F1"] == pytest.approx(expected, rel=1e-7, abs=1e-12)
            checked += n_f1 != n_dice
    assert checked > 50  # the ratio is exercised where it differs from 1


def test_batch_equals_single(matrices: list[np.ndarray]) -> None:
    rng = np.random.default_rng(7)
    stack = np.stack([random_matrix(rng, 9) for _ in range(300)])
    stack[0] = 0
    batch = compute_metrics_batch(stack)
    for i, m in enumerate(stack):
        single = compute_metrics(m)
        for name in METRICS:
            assert batch[name].shape == (len(stack),)
            assert batch[name][i] == single[name]
    # a non-contiguous view gives the same values
    view = compute_metrics_batch(np.ascontiguousarray(stack.transpose(0, 2, 1)).transpose(0, 2, 1))
    for name in METRICS:
        np.testing.assert_array_equal(view[name], batch[name])


def test_shape_validation() -> None:
    with pytest.raises(ValueError):
        compute_metrics(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        compute_metrics_batch(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        bootstrap(np.zeros((0, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError):
        bootstrap(-np.ones((2, 2, 2), dtype=np.int64))


def test_vectorised_draws_equal_sequential_choice() -> None:
    for n, b, seed in [(1, 5, 0), (7, 50, 42), (151, 20, 3), (800, 10, 42)]:
        rs = np.random.RandomState(seed)
        sequential = np.stack([rs.choice(n, n, replace=True) for _ in range(b)])
        np.testing.assert_array_equal(bootstrap_indices(n, b, seed), sequential)
        # and the legacy global stream the authors seeded with np.random.seed
        np.random.seed(seed)
        global_stream = np.stack([np.random.choice(n, n, replace=True) for _ in range(b)])
        np.testing.assert_array_equal(bootstrap_indices(n, b, seed), global_stream)


def test_replicate_counts() -> None:
    idx = np.array([[0, 0, 2], [1, 2, 2]])
    np.testing.assert_array_equal(replicate_counts(idx, 3), [[2, 0, 1], [0, 1, 2]])


def _stack(seed: int, n: int = 40, c: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([random_matrix(rng, c) for _ in range(n)])


def reference_bootstrap(per_image: np.ndarray, replicates: int, seed: int, **options) -> dict:
    """The authors' loop: seeded sequential choice, sum, metrics, np.percentile."""
    rs = np.random.RandomState(seed)
    n = len(per_image)
    values: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(replicates):
        idx = rs.choice(n, n, replace=True)
        got = compute_metrics(per_image[idx].sum(axis=0), **options)
        for name in METRICS:
            values[name].append(got[name])
    out = {}
    for name, vals in values.items():
        arr = np.array(vals)
        out[name] = {
            "boot_mean": float(np.mean(arr)),
            "ci_lower": float(np.percentile(arr, 2.5)),
            "ci_upper": float(np.percentile(arr, 97.5)),
            "boot_std": float(np.std(arr)),
        }
    return out


def test_bootstrap_matches_reference_loop_exactly() -> None:
    per_image = _stack(11)
    got = bootstrap(per_image, replicates=200, seed=42)
    want = reference_bootstrap(per_image, 200, 42)
    for name in METRICS:
        assert got[name]["ci_lower"] == want[name]["ci_lower"]
        assert got[name]["ci_upper"] == want[name]["ci_upper"]
        assert got[name]["boot_mean"] == pytest.approx(want[name]["boot_mean"], rel=1e-15)
        assert got[name]["boot_std"] == pytest.approx(want[name]["boot_std"], rel=1e-12)
        assert got[name]["point"] == compute_metrics(per_image.sum(axis=0))[name]
        assert got[name]["ci_lower"] <= got[name]["boot_mean"] <= got[name]["ci_upper"]


def test_replicate_matrices_int_fallback_is_exact() -> None:
    per_image = _stack(5, n=6, c=3) * (2**50)  # forces the int64 path
    reps = replicate_matrices(per_image, 4, 42)
    rs = np.random.RandomState(42)
    for rep in reps:
        np.testing.assert_array_equal(rep, per_image[rs.choice(6, 6, replace=True)].sum(0))


def test_bootstrap_determinism_and_boot_mean_differs_from_point() -> None:
    per_image = _stack(3)
    a = bootstrap(per_image, replicates=100, seed=7)
    assert a == bootstrap(per_image, replicates=100, seed=7)
    assert a != bootstrap(per_image, replicates=100, seed=8)
    assert any(a[name]["boot_mean"] != a[name]["point"] for name in METRICS)
    assert a["mIoU"]["boot_mean"] != a["mIoU"]["point"]


def _write_npz(path: Path, matrices: np.ndarray) -> None:
    n, c, _ = matrices.shape
    np.savez(
        path,
        matrices=matrices,
        sample_ids=np.array([f"img{i}" for i in range(n)]),
        classes=np.array([f"c{k}" for k in range(c)]),
    )


def test_score_run(tmp_path: Path) -> None:
    per_image = _stack(9, n=12, c=4)
    npz = tmp_path / "confusion.npz"
    _write_npz(npz, per_image)
    keys = {"dataset": "BCSS", "model": "uni_v1", "strategy": "frozen"}
    df = score_run(npz, keys, replicates=50, seed=42)
    assert list(df.columns) == [
        "dataset", "model", "strategy", "metric", "class", "class_name", "point", "boot_mean",
        "ci_lower", "ci_upper", "boot_std", "n_images", "replicates", "seed", "definitions",
        "exclude_background",
    ]  # fmt: skip
    assert len(df) == len(METRICS) + len(CLASS_METRICS) * 4
    head = df.iloc[: len(METRICS)]
    assert list(head["metric"]) == list(METRICS) and head["class"].isna().all()
    assert head["class_name"].isna().all()
    assert list(df["metric"].iloc[len(METRICS) :]) == list(CLASS_METRICS) * 4
    assert list(df["class"].iloc[len(METRICS) :]) == [c for c in range(4) for _ in CLASS_METRICS]
    assert set(df["class_name"].dropna()) == {"c0", "c1", "c2", "c3"}
    assert set(df["n_images"]) == {12} and set(df["replicates"]) == {50} and set(df["seed"]) == {42}
    stats = bootstrap(per_image, 50, 42)
    for rec in head.to_dict("records"):
        assert rec["boot_mean"] == stats[rec["metric"]]["boot_mean"]
        assert rec["dataset"] == "BCSS"


def test_score_run_rejects_inconsistent_npz(tmp_path: Path) -> None:
    npz = tmp_path / "bad.npz"
    np.savez(
        npz,
        matrices=np.zeros((2, 3, 3), dtype=np.int64),
        sample_ids=np.array(["a", "b"]),
        classes=np.array(["x", "y"]),
    )
    with pytest.raises(ValueError, match=r"bad\.npz"):
        score_run(npz, {"dataset": "d"}, replicates=5, seed=0)


# --- "standard" definitions (the corrected protocol) ------------------------------------------


def reference_standard_metrics(m: np.ndarray, exclude_background: bool = False) -> dict:
    """Per-class loop of the standard definitions: one valid set V = {TP+FP+FN > 0}."""
    m = np.asarray(m, dtype=np.int64)
    classes = range(1 if exclude_background else 0, m.shape[0])
    counted_total = sum(int(m[k, :].sum()) for k in classes)
    iou, dice, prec, rec = [], [], [], []
    fwiou = 0.0
    tp_sum = 0
    for k in classes:
        tp = int(m[k, k])
        fp = int(m[:, k].sum()) - tp
        fn = int(m[k, :].sum()) - tp
        tp_sum += tp
        if tp + fp + fn == 0:
            continue
        iou.append(tp / (tp + fp + fn + EPS))
        dice.append(2 * tp / (2 * tp + fp + fn + EPS))
        prec.append(tp / (tp + fp + EPS))
        rec.append(tp / (tp + fn + EPS))
        fwiou += (tp + fn) / (counted_total + EPS) * iou[-1]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return {
        "mIoU": mean(iou),
        "Pixel_Accuracy": tp_sum / (counted_total + EPS),
        "Mean_Accuracy": mean(rec),
        "Frequency_Weighted_IoU": fwiou,
        "Mean_Dice": mean(dice),
        "Mean_Precision": mean(prec),
        "Mean_Recall": mean(rec),
        "Mean_F1": mean(dice),
    }


EDGE_MATRICES = [
    np.zeros((3, 3), dtype=np.int64),  # all zero
    np.array([[9, 0, 0], [0, 0, 0], [0, 0, 0]]),  # background only
    np.array([[5, 3, 0], [0, 0, 0], [0, 0, 0]]),  # background-only truth, foreground predicted
    np.array([[0, 0], [0, 7]]),  # no background at all
    np.array([[4]]),  # a single (background) class
    np.array([[0, 5], [3, 0]]),  # nothing correct
    np.array([[10, 0], [4, 0]]),  # class 1 never predicted
    np.array([[10, 4], [0, 0]]),  # class 1 predicted but absent
]


@pytest.mark.parametrize("exclude_background", [False, True])
def test_standard_metrics_match_reference_loop(
    matrices: list[np.ndarray], exclude_background: bool
) -> None:
    for m in [*matrices, *EDGE_MATRICES]:
        got = compute_metrics(m, definitions="standard", exclude_background=exclude_background)
        want = reference_standard_metrics(m, exclude_background)
        assert list(got) == list(METRICS)
        for name in METRICS:
            assert got[name] == pytest.approx(want[name], abs=1e-9, rel=0), (name, m)


@pytest.mark.parametrize("exclude_background", [False, True])
def test_standard_batch_equals_single(exclude_background: bool) -> None:
    rng = np.random.default_rng(8)
    stack = np.stack([random_matrix(rng, 6) for _ in range(200)])
    options = {"definitions": "standard", "exclude_background": exclude_background}
    batch = compute_metrics_batch(stack, **options)
    for i, m in enumerate(stack):
        single = compute_metrics(m, **options)
        for name in METRICS:
            assert batch[name][i] == single[name]


@pytest.mark.parametrize("exclude_background", [False, True])
def test_standard_f1_equals_dice_and_recall_equals_accuracy(
    matrices: list[np.ndarray], exclude_background: bool
) -> None:
    for m in [*matrices, *EDGE_MATRICES]:
        got = compute_metrics(m, definitions="standard", exclude_background=exclude_background)
        assert got["Mean_F1"] == got["Mean_Dice"]
        assert got["Mean_Recall"] == got["Mean_Accuracy"]


def test_standard_shares_miou_dice_pa_fwiou_with_paper(matrices: list[np.ndarray]) -> None:
    for m in [*matrices, *EDGE_MATRICES]:
        paper = compute_metrics(m)
        standard = compute_metrics(m, definitions="standard")
        for name in ("mIoU", "Mean_Dice", "Pixel_Accuracy", "Frequency_Weighted_IoU"):
            assert standard[name] == paper[name], (name, m)


def test_standard_precision_recall_f1_never_exceed_paper(matrices: list[np.ndarray]) -> None:
    strict_precision = strict_recall = 0
    for m in matrices:
        paper = compute_metrics(m)
        standard = compute_metrics(m, definitions="standard")
        for name in ("Mean_Precision", "Mean_Recall"):  # same per-class values, zeros added
            assert standard[name] <= paper[name], (name, m)
        # paper F1 = 2PR/(P+R+EPS) sits a hair below Dice_c; allow for that EPS term only
        assert standard["Mean_F1"] <= paper["Mean_F1"] * (1 + 1e-7), m
        row, col = m.sum(axis=1), m.sum(axis=0)
        if np.any((row > 0) & (col == 0)) and paper["Mean_Precision"] > 0:
            assert standard["Mean_Precision"] < paper["Mean_Precision"]
            strict_precision += 1
        if np.any((row == 0) & (col > 0)) and paper["Mean_Recall"] > 0:
            assert standard["Mean_Recall"] < paper["Mean_Recall"]
            strict_recall += 1
    assert strict_precision > 50 and strict_recall > 0  # the differing cases are exercised


# Class 2 is present (row 2) but never predicted (column 2 is zero).
# row = [10, 8, 2], col = [11, 9, 0], TP = [8, 6, 0], FP = [3, 3, 0], FN = [2, 2, 2].
HAND_NEVER_PREDICTED = np.array([[8, 2, 0], [2, 6, 0], [1, 1, 0]])
# Class 1 is predicted (column 3) but absent (row 0); class 2 present, never predicted.
# row = [8, 0, 2], col = [7, 3, 0], TP = [6, 0, 0], FP = [1, 3, 0], FN = [2, 0, 2].
HAND_PREDICTED_ABSENT = np.array([[6, 2, 0], [0, 0, 0], [1, 1, 0]])

HAND_CASES = [
    (
        HAND_NEVER_PREDICTED,
        "paper",
        False,
        {
            "mIoU": (8 / 13 + 6 / 11 + 0) / 3,
            "Pixel_Accuracy": 14 / 20,
            "Mean_Accuracy": (8 / 10 + 6 / 8 + 0 / 2) / 3,
            "Frequency_Weighted_IoU": 10 / 20 * 8 / 13 + 8 / 20 * 6 / 11,
            "Mean_Dice": (16 / 21 + 12 / 17 + 0) / 3,
            "Mean_Precision": (8 / 11 + 6 / 9) / 2,  # class 2 dropped
            "Mean_Recall": (8 / 10 + 6 / 8 + 0 / 2) / 3,
            "Mean_F1": (16 / 21 + 12 / 17) / 2,  # class 2 (TP = 0) dropped
        },
    ),
    (
        HAND_NEVER_PREDICTED,
        "standard",
        False,
        {
            "mIoU": (8 / 13 + 6 / 11 + 0) / 3,
            "Pixel_Accuracy": 14 / 20,
            "Mean_Accuracy": (8 / 10 + 6 / 8 + 0 / 2) / 3,
            "Frequency_Weighted_IoU": 10 / 20 * 8 / 13 + 8 / 20 * 6 / 11,
            "Mean_Dice": (16 / 21 + 12 / 17 + 0) / 3,
            "Mean_Precision": (8 / 11 + 6 / 9 + 0) / 3,  # = 46/99 < paper's 23/33
            "Mean_Recall": (8 / 10 + 6 / 8 + 0 / 2) / 3,
            "Mean_F1": (16 / 21 + 12 / 17 + 0) / 3,
        },
    ),
    (
        HAND_NEVER_PREDICTED,
        "standard",
        True,
        {
            "mIoU": (6 / 11 + 0) / 2,
            "Pixel_Accuracy": 6 / (8 + 2),
            "Mean_Accuracy": (6 / 8 + 0 / 2) / 2,
            "Frequency_Weighted_IoU": 8 / 10 * 6 / 11 + 2 / 10 * 0,
            "Mean_Dice": (12 / 17 + 0) / 2,
            "Mean_Precision": (6 / 9 + 0) / 2,
            "Mean_Recall": (6 / 8 + 0 / 2) / 2,
            "Mean_F1": (12 / 17 + 0) / 2,
        },
    ),
    (
        HAND_PREDICTED_ABSENT,
        "paper",
        False,
        {
            "mIoU": (6 / 9 + 0 + 0) / 3,
            "Pixel_Accuracy": 6 / 10,
            "Mean_Accuracy": (6 / 8 + 0 / 2) / 2,  # absent class 1 dropped
            "Frequency_Weighted_IoU": 8 / 10 * 6 / 9,
            "Mean_Dice": (12 / 15 + 0 + 0) / 3,
            "Mean_Precision": (6 / 7 + 0 / 3) / 2,  # never-predicted class 2 dropped
            "Mean_Recall": (6 / 8 + 0 / 2) / 2,
            "Mean_F1": 12 / 15,  # only class 0 has TP > 0
        },
    ),
    (
        HAND_PREDICTED_ABSENT,
        "standard",
        False,
        {
            "mIoU": (6 / 9 + 0 + 0) / 3,
            "Pixel_Accuracy": 6 / 10,
            "Mean_Accuracy": (6 / 8 + 0 + 0 / 2) / 3,
            "Frequency_Weighted_IoU": 8 / 10 * 6 / 9,
            "Mean_Dice": (12 / 15 + 0 + 0) / 3,
            "Mean_Precision": (6 / 7 + 0 / 3 + 0) / 3,
            "Mean_Recall": (6 / 8 + 0 + 0 / 2) / 3,
            "Mean_F1": (12 / 15 + 0 + 0) / 3,
        },
    ),
]


@pytest.mark.parametrize(("matrix", "definitions", "exclude_background", "expected"), HAND_CASES)
def test_hand_computed_examples(
    matrix: np.ndarray, definitions: str, exclude_background: bool, expected: dict
) -> None:
    got = compute_metrics(matrix, definitions=definitions, exclude_background=exclude_background)
    for name in METRICS:
        assert got[name] == pytest.approx(expected[name], rel=1e-7, abs=1e-12), name


def test_hand_example_precision_drops_under_standard() -> None:
    paper = compute_metrics(HAND_NEVER_PREDICTED)["Mean_Precision"]
    standard = compute_metrics(HAND_NEVER_PREDICTED, definitions="standard")["Mean_Precision"]
    assert paper == pytest.approx(23 / 33) and standard == pytest.approx(46 / 99)
    assert standard < paper


# Paper-mode values produced by the code before the "standard" option existed (repr-exact).
PAPER_GOLDEN = {
    "mIoU": 0.3869463866233067,
    "Pixel_Accuracy": 0.6999999996499999,
    "Mean_Accuracy": 0.5166666660875,
    "Frequency_Weighted_IoU": 0.5258741251761553,  # was ...54390923 before the weights' EPS
    "Mean_Dice": 0.48926237135596723,
    "Mean_Precision": 0.6969696962687479,
    "Mean_Recall": 0.5166666660875,
    "Mean_F1": 0.733893551659252,
}
PAPER_BOOT_GOLDEN = {
    "Mean_Precision": {
        "point": 0.815499804758554,
        "boot_mean": 0.8105110700464147,
        "ci_lower": 0.7804811113150407,
        "ci_upper": 0.8438751457075767,
        "boot_std": 0.01669550302746732,
    },
    "Mean_F1": {
        "point": 0.8154249121485533,
        "boot_mean": 0.8090422264498901,
        "ci_lower": 0.7797914627614182,
        "ci_upper": 0.8429860568141943,
        "boot_std": 0.01661663794795659,
    },
}


def test_paper_definitions_bit_identical_to_before(matrices: list[np.ndarray]) -> None:
    assert compute_metrics(HAND_NEVER_PREDICTED) == PAPER_GOLDEN
    assert compute_metrics(HAND_NEVER_PREDICTED, definitions="paper") == PAPER_GOLDEN
    boot = bootstrap(_stack(11), replicates=200, seed=42, definitions="paper")
    for name, stats in PAPER_BOOT_GOLDEN.items():
        assert boot[name] == stats
    stack = np.stack([m for m in matrices if m.shape == (5, 5)])
    default = compute_metrics_batch(stack)
    explicit = compute_metrics_batch(stack, definitions="paper", exclude_background=False)
    for name in METRICS:
        assert default[name].tobytes() == explicit[name].tobytes()


def _call_all(tmp_path: Path, **options) -> list:
    """Call the four option-taking functions with ``options``; return the callables."""
    per_image = _stack(2, n=4, c=3)
    npz = tmp_path / "c.npz"
    _write_npz(npz, per_image)
    return [
        lambda: compute_metrics_batch(per_image, **options),
        lambda: compute_metrics(per_image[0], **options),
        lambda: bootstrap(per_image, replicates=5, seed=0, **options),
        lambda: score_run(npz, {"dataset": "d"}, replicates=5, seed=0, **options),
    ]


def test_unknown_definitions_rejected(tmp_path: Path) -> None:
    assert DEFINITIONS == ("paper", "standard")
    for bad in ("corrected", "Standard", ""):
        for call in _call_all(tmp_path, definitions=bad):
            with pytest.raises(
                ValueError, match=r"unknown metric definitions.*'paper', 'standard'"
            ):
                call()


def test_exclude_background_needs_standard(tmp_path: Path) -> None:
    for call in _call_all(tmp_path, definitions="paper", exclude_background=True):
        with pytest.raises(ValueError, match=r"always include background.*definitions='standard'"):
            call()
    for call in _call_all(tmp_path, exclude_background=True):  # paper is the default
        with pytest.raises(ValueError, match="background"):
            call()
    for call in _call_all(tmp_path, definitions="standard", exclude_background=True):
        call()  # the valid combination runs


@pytest.mark.parametrize("exclude_background", [False, True])
def test_score_run_standard_columns(tmp_path: Path, exclude_background: bool) -> None:
    per_image = _stack(9, n=12, c=4)
    per_image[:, :, 3] = 0  # class 3 is never predicted ...
    per_image[:, 3, 1] += 1  # ... but present in every image
    npz = tmp_path / "confusion.npz"
    _write_npz(npz, per_image)
    keys = {"dataset": "BCSS", "model": "uni_v1", "strategy": "frozen"}
    options = {"definitions": "standard", "exclude_background": exclude_background}
    df = score_run(npz, keys, replicates=50, seed=42, **options)
    columns = list(df.columns)
    assert columns[: columns.index("seed") + 1] == [*keys, *RUN_COLUMNS]
    assert columns[columns.index("seed") + 1 :] == ["definitions", "exclude_background"]
    assert set(df["definitions"]) == {"standard"}
    assert df["exclude_background"].tolist() == [exclude_background] * len(df)
    stats = bootstrap(per_image, 50, 42, **options)
    for rec in df.iloc[: len(METRICS)].to_dict("records"):
        for stat in ("point", "boot_mean", "ci_lower", "ci_upper", "boot_std"):
            assert rec[stat] == stats[rec["metric"]][stat]
    paper = score_run(npz, keys, replicates=50, seed=42)
    assert set(paper["definitions"]) == {"paper"} and not paper["exclude_background"].any()
    assert paper.loc[5, "metric"] == "Mean_Precision"
    if not exclude_background:  # the never-predicted class now counts as 0
        assert df.loc[5, "boot_mean"] < paper.loc[5, "boot_mean"]
    with pytest.raises(ValueError, match="collide"):
        score_run(npz, {"definitions": "x"}, replicates=5, seed=0)


def test_bootstrap_standard_uses_the_same_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    per_image = _stack(11)
    drawn: dict[str, np.ndarray] = {}
    original = bootstrap_module.bootstrap_indices

    def spy(n: int, replicates: int, seed: int) -> np.ndarray:
        drawn[mode] = original(n, replicates, seed)
        return drawn[mode]

    monkeypatch.setattr(bootstrap_module, "bootstrap_indices", spy)
    results = {}
    for mode, options in [
        ("paper", {}),
        ("standard", {"definitions": "standard"}),
        ("standard_fg", {"definitions": "standard", "exclude_background": True}),
    ]:
        results[mode] = bootstrap(per_image, replicates=200, seed=42, **options)
        want = reference_bootstrap(per_image, 200, 42, **options)
        point = compute_metrics(per_image.sum(axis=0), **options)
        for name in METRICS:
            assert results[mode][name]["point"] == point[name]
            assert results[mode][name]["ci_lower"] == want[name]["ci_lower"]
            assert results[mode][name]["ci_upper"] == want[name]["ci_upper"]
            assert results[mode][name]["boot_mean"] == pytest.approx(
                want[name]["boot_mean"], rel=1e-15
            )
    assert set(drawn) == {"paper", "standard", "standard_fg"}
    np.testing.assert_array_equal(drawn["standard"], drawn["paper"])
    np.testing.assert_array_equal(drawn["standard_fg"], drawn["paper"])
    # same draws: the metrics that share their definition agree bit for bit
    assert results["standard"]["mIoU"] == results["paper"]["mIoU"]
    assert results["standard"]["Mean_F1"] != results["paper"]["Mean_F1"]


# --- Frequency_Weighted_IoU weights (issue 8, item 5) ------------------------------------------


def test_fwiou_weights_divide_by_total_plus_eps() -> None:
    """Weights row_c / (sum M + EPS), as the authors' `class_frequencies / (total + 1e-8)`."""
    eye = np.eye(2, dtype=np.int64)  # rows 1, 1; IoU_c = 1 / (1 + EPS)
    iou = 1 / (1 + EPS)
    want = 1 / (2 + EPS) * iou + 1 / (2 + EPS) * iou
    assert want != pytest.approx(iou, rel=0, abs=1e-12)  # dividing by sum M alone gives iou
    m = np.array([[3, 1], [2, 4]])  # rows 4, 6; IoU = 3 / (3 + 2 + 1), 4 / (4 + 1 + 2)
    want_m = 4 / (10 + EPS) * (3 / (6 + EPS)) + 6 / (10 + EPS) * (4 / (7 + EPS))
    for definitions in DEFINITIONS:
        got = compute_metrics(eye, definitions=definitions)["Frequency_Weighted_IoU"]
        assert got == pytest.approx(want, rel=0, abs=1e-15)
        got = compute_metrics(m, definitions=definitions)["Frequency_Weighted_IoU"]
        assert got == pytest.approx(want_m, rel=0, abs=1e-15)
    # background excluded: foreground frequencies row_c / (sum_{c>=1} row + EPS)
    options = {"definitions": "standard", "exclude_background": True}
    got = compute_metrics(m, **options)["Frequency_Weighted_IoU"]
    assert got == pytest.approx(6 / (6 + EPS) * (4 / (7 + EPS)), rel=0, abs=1e-15)
    assert compute_metrics(np.zeros((2, 2)), **options)["Frequency_Weighted_IoU"] == 0.0


# --- per-class metrics (issue 8, item 6) --------------------------------------------------------


def reference_class_metrics(
    m: np.ndarray, definitions: str = "paper", exclude_background: bool = False
) -> dict[str, list[float]]:
    """Per-class loop: the authors' IoU/Dice/Precision/Recall/F1_Class_c, or the standard ones."""
    m = np.asarray(m, dtype=np.int64)
    out: dict[str, list[float]] = {name: [] for name in CLASS_METRICS}
    for k in range(m.shape[0]):
        tp = int(m[k, k])
        fp = int(m[:, k].sum()) - tp
        fn = int(m[k, :].sum()) - tp
        p = tp / (tp + fp + EPS) if tp + fp > 0 else 0.0
        r = tp / (tp + fn + EPS) if tp + fn > 0 else 0.0
        union = tp + fp + fn > 0
        iou = tp / (tp + fp + fn + EPS) if union else 0.0
        dice = 2 * tp / (2 * tp + fp + fn + EPS) if union else 0.0
        if definitions == "paper":
            f1 = 2 * p * r / (p + r + EPS) if p + r > 0 else 0.0
            values = [iou, dice, p, r, f1]
        elif union and not (exclude_background and k == 0):
            values = [iou, dice, tp / (tp + fp + EPS), tp / (tp + fn + EPS), dice]
        else:
            values = [math.nan] * 5
        for name, value in zip(CLASS_METRICS, values, strict=True):
            out[name].append(value)
    return out


CLASS_OPTIONS = [
    {"definitions": "paper"},
    {"definitions": "standard"},
    {"definitions": "standard", "exclude_background": True},
]


@pytest.mark.parametrize("options", CLASS_OPTIONS)
def test_class_metrics_match_reference_loop(matrices: list[np.ndarray], options: dict) -> None:
    assert CLASS_METRICS == ("IoU", "Dice", "Precision", "Recall", "F1")
    for m in [*matrices, *EDGE_MATRICES]:
        got = compute_class_metrics(m, **options)
        want = reference_class_metrics(m, **options)
        assert list(got) == list(CLASS_METRICS)
        for name in CLASS_METRICS:
            assert got[name].shape == (m.shape[0],)
            assert got[name].tolist() == pytest.approx(want[name], abs=1e-12, rel=0, nan_ok=True)


def test_class_metrics_hand_example() -> None:
    """HAND_NEVER_PREDICTED: class 2 present, never predicted (TP = FP = 0, FN = 2)."""
    paper = compute_class_metrics(HAND_NEVER_PREDICTED)
    expected = {
        "IoU": [8 / 13, 6 / 11, 0.0],
        "Dice": [16 / 21, 12 / 17, 0.0],
        "Precision": [8 / 11, 6 / 9, 0.0],  # reported as 0, not dropped
        "Recall": [8 / 10, 6 / 8, 0.0],
        "F1": [16 / 21, 12 / 17, 0.0],
    }
    for name, values in expected.items():
        assert paper[name].tolist() == pytest.approx(values, rel=1e-7, abs=1e-12)
    # Mean_Dice is the mean of the per-class Dice (class 2 valid); Mean_Precision drops class 2
    means = compute_metrics(HAND_NEVER_PREDICTED)
    assert means["Mean_Dice"] == pytest.approx(paper["Dice"].mean(), rel=1e-12)
    assert means["Mean_Precision"] == pytest.approx(paper["Precision"][:2].mean(), rel=1e-12)
    standard = compute_class_metrics(HAND_PREDICTED_ABSENT, definitions="standard")
    assert standard["IoU"].tolist() == pytest.approx([6 / 9, 0.0, 0.0], rel=1e-7)
    absent = compute_class_metrics(np.array([[5, 0], [0, 0]]), definitions="standard")
    assert all(math.isnan(absent[name][1]) for name in CLASS_METRICS)  # undefined, not 0
    assert compute_class_metrics(np.array([[5, 0], [0, 0]]))["IoU"][1] == 0.0  # paper: 0


@pytest.mark.parametrize("options", CLASS_OPTIONS)
def test_class_batch_equals_single(options: dict) -> None:
    stack = _stack(4, n=50, c=6)
    batch = compute_class_metrics_batch(stack, **options)
    for i, m in enumerate(stack):
        single = compute_class_metrics(m, **options)
        for name in CLASS_METRICS:
            np.testing.assert_array_equal(batch[name][i], single[name])


def reference_class_bootstrap(per_image: np.ndarray, replicates: int, seed: int, **options):
    """The authors' bootstrap_evaluation loop for the per-class keys (NaN replicates dropped)."""
    np.random.seed(seed)
    n, c = per_image.shape[:2]
    values = {(name, k): [] for name in CLASS_METRICS for k in range(c)}
    for _ in range(replicates):
        idx = np.random.choice(n, size=n, replace=True)
        got = reference_class_metrics(per_image[idx].sum(axis=0), **options)
        for name in CLASS_METRICS:
            for k in range(c):
                values[(name, k)].append(got[name][k])
    out = {}
    for key, vals in values.items():
        arr = np.array(vals)
        arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            out[key] = None
            continue
        out[key] = {
            "boot_mean": float(np.mean(arr)),
            "ci_lower": float(np.percentile(arr, 2.5)),
            "ci_upper": float(np.percentile(arr, 97.5)),
            "boot_std": float(np.std(arr)),
        }
    return out


def _sparse_stack() -> np.ndarray:
    """40 images x 5 classes; class 4 is in 2 images only, so many replicates lack it."""
    stack = _stack(21, n=40, c=5)
    stack[:, 4, :] = 0
    stack[:, :, 4] = 0
    stack[[3, 17], 4, 4] = [30, 12]
    stack[3, 4, 0] = 5
    return stack


@pytest.mark.parametrize("options", CLASS_OPTIONS)
def test_class_bootstrap_matches_reference_loop(options: dict) -> None:
    per_image = _sparse_stack()
    got = bootstrap_all(per_image, replicates=300, seed=42, **options)[1]
    want = reference_class_bootstrap(per_image, 300, 42, **options)
    point = reference_class_metrics(per_image.sum(axis=0), **options)
    assert list(got) == list(CLASS_METRICS)
    for name in CLASS_METRICS:
        assert len(got[name]) == per_image.shape[1]
        for k, stats in enumerate(got[name]):
            assert stats["point"] == pytest.approx(point[name][k], abs=1e-12, nan_ok=True)
            ref = want[(name, k)]
            if ref is None:  # never defined (the excluded background)
                assert all(math.isnan(stats[s]) for s in ("boot_mean", "ci_lower", "ci_upper"))
                continue
            for stat, value in ref.items():
                assert stats[stat] == pytest.approx(value, abs=1e-12, rel=1e-12), (name, k, stat)
            assert 0.0 <= stats["ci_lower"] <= stats["ci_upper"] <= 1.0
            assert stats["boot_std"] >= 0.0


def test_class_bootstrap_ci_ordering_and_definitions() -> None:
    per_image = _sparse_stack()
    paper = bootstrap_all(per_image, replicates=300, seed=42)[1]
    standard = bootstrap_all(per_image, replicates=300, seed=42, definitions="standard")[1]
    fg = bootstrap_all(
        per_image, replicates=300, seed=42, definitions="standard", exclude_background=True
    )[1]
    for name in CLASS_METRICS:
        for k in range(4):  # classes present in (nearly) every replicate
            s = paper[name][k]
            assert s["ci_lower"] <= s["boot_mean"] <= s["ci_upper"], (name, k)
        # class 4 is absent from ~1/4 of the replicates: 0 there under the paper, undefined
        # (dropped) under standard, so the paper's mean is lower and its CI reaches 0
        assert paper[name][4]["ci_lower"] == 0.0
        assert standard[name][4]["boot_mean"] > paper[name][4]["boot_mean"]
        assert standard[name][4]["ci_lower"] > 0.0
        assert math.isnan(fg[name][0]["boot_mean"]) and math.isnan(fg[name][0]["point"])
        assert fg[name][1:] == standard[name][1:]  # excluding class 0 changes no other class
    assert [s["boot_mean"] for s in standard["F1"]] == [s["boot_mean"] for s in standard["Dice"]]


def test_bootstrap_all_shares_one_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = bootstrap_module.bootstrap_indices

    def spy(n: int, replicates: int, seed: int) -> np.ndarray:
        calls.append((n, replicates, seed))
        return original(n, replicates, seed)

    monkeypatch.setattr(bootstrap_module, "bootstrap_indices", spy)
    per_image = _stack(11)
    headline, _ = bootstrap_all(per_image, replicates=200, seed=42)
    assert calls == [(40, 200, 42)]
    assert headline == bootstrap(per_image, replicates=200, seed=42)


@pytest.mark.parametrize("options", CLASS_OPTIONS)
def test_score_run_per_class_rows(tmp_path: Path, options: dict) -> None:
    per_image = _sparse_stack()
    npz = tmp_path / "confusion.npz"
    _write_npz(npz, per_image)
    df = score_run(npz, {"dataset": "BCSS"}, replicates=100, seed=42, **options)
    assert len(df) == len(METRICS) + len(CLASS_METRICS) * 5
    stats = bootstrap_all(per_image, 100, 42, **options)[1]
    rows = df[df["class"].notna()]
    for rec in rows.to_dict("records"):
        want = stats[rec["metric"]][rec["class"]]
        assert rec["class_name"] == f"c{rec['class']}"
        for stat in ("point", "boot_mean", "ci_lower", "ci_upper", "boot_std"):
            assert rec[stat] == pytest.approx(want[stat], rel=0, abs=0, nan_ok=True)
    back = tmp_path / "scores.csv"
    write_table(df, back)
    read = pd.read_csv(back)
    assert read["class"].isna().sum() == len(METRICS)
    assert read["class"].dropna().astype(int).tolist() == rows["class"].tolist()
