"""Tests for densebench.metrics: §5 metric definitions, bootstrap stream, scoring and IO."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densebench.metrics import (
    EPS,
    METRICS,
    bootstrap,
    bootstrap_indices,
    compute_metrics,
    compute_metrics_batch,
    replicate_counts,
    replicate_matrices,
    score_run,
    write_table,
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
        if total > 0:
            fwiou += (tp + fn) / total * iou_k
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


def reference_bootstrap(per_image: np.ndarray, replicates: int, seed: int) -> dict:
    """The authors' loop: seeded sequential choice, sum, metrics, np.percentile."""
    rs = np.random.RandomState(seed)
    n = len(per_image)
    values: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(replicates):
        idx = rs.choice(n, n, replace=True)
        got = compute_metrics(per_image[idx].sum(axis=0))
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
        "dataset", "model", "strategy", "metric", "point", "boot_mean", "ci_lower",
        "ci_upper", "boot_std", "n_images", "replicates", "seed",
    ]  # fmt: skip
    assert list(df["metric"]) == list(METRICS)
    assert set(df["n_images"]) == {12} and set(df["replicates"]) == {50} and set(df["seed"]) == {42}
    stats = bootstrap(per_image, 50, 42)
    for rec in df.to_dict("records"):
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


def test_write_table_atomic_roundtrip(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [0.1 + 0.2, math.pi]})
    target = tmp_path / "deep" / "dir" / "t.csv"
    write_table(df, target)
    back = pd.read_csv(target)
    assert back["b"].tolist() == df["b"].tolist()  # full float precision
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.csv"]  # no temp left over
    write_table(df.iloc[:1], target)  # overwrite
    assert len(pd.read_csv(target)) == 1
