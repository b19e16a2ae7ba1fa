"""Bootstrap image order under the paper split: the authors' draws pick the authors' images.

`scripts/infer_bootstrap.py::bootstrap_evaluation` seeds `np.random.seed(seed)` and draws
`np.random.choice(N, N, replace=True)` indices into the per-image matrices, which come in the
order of the test list in configs/data/<Dataset>.json (an unshuffled loader over
`JSONSegmentationDataset`). Index i must therefore be the i-th test entry of the list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from densebench.data.store import DatasetStore
from densebench.evaluate.bootstrap import score_run
from densebench.evaluate.confusion import write_confusion
from densebench.evaluate.predict import predict_matrices
from densebench.variants import RUN_KEYS
from tests.paper_lists import (
    PIXEL_SPEC,
    expected_confusion,
    list_stems,
    red_model,
    write_tnbc_store,
)

EPS = 1e-8
REPLICATES, SEED = 300, 42
KEYS = dict(zip(RUN_KEYS, ("TNBC", "red", "frozen"), strict=True))


def authors_metrics(cm: np.ndarray) -> dict[str, float]:
    """mIoU, Pixel_Accuracy, FWIoU, Mean_Dice of compute_metrics_from_confusion_matrix."""
    tp = np.diag(cm).astype(float)
    fp, fn, row = cm.sum(0) - tp, cm.sum(1) - tp, cm.sum(1)
    union = tp + fp + fn
    iou = np.where(union > 0, tp / (union + EPS), 0.0)
    dice = 2 * tp / (2 * tp + fp + fn + EPS)
    return {
        "mIoU": float(iou[union > 0].mean()),
        "Pixel_Accuracy": float(tp.sum() / (cm.sum() + EPS)),
        "Frequency_Weighted_IoU": float((row / (cm.sum() + EPS) * iou).sum()),
        "Mean_Dice": float(dice[union > 0].mean()),
    }


def authors_bootstrap(per_image: list[np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """(mean, ci_lower, ci_upper) per metric of the authors' sequential loop."""
    np.random.seed(SEED)
    stack = np.stack(per_image)
    values: dict[str, list[float]] = {}
    for _ in range(REPLICATES):
        indices = np.random.choice(len(stack), size=len(stack), replace=True)
        for name, value in authors_metrics(stack[indices].sum(axis=0)).items():
            values.setdefault(name, []).append(value)
    return {
        name: (float(np.mean(v)), float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
        for name, v in values.items()
    }


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[Path, Path]:
    """A paper-split store and the confusion.npz of `red_model` on its test split."""
    root = tmp_path_factory.mktemp("order")
    store = write_tnbc_store(root / "TNBC.zarr")
    matrices, ids = predict_matrices(red_model, PIXEL_SPEC, store, torch.device("cpu"))
    npz = root / "confusion.npz"
    write_confusion(npz, matrices, ids, DatasetStore(store).classes, KEYS)
    return store, npz


def per_image(store: Path, ids: list[str]) -> list[np.ndarray]:
    """Independently computed per-image matrices of `ids`, in that order."""
    reader = DatasetStore(store)
    where = {m["id"]: i for i, m in enumerate(reader.samples)}
    return [expected_confusion(*reader.read(where[i])) for i in ids]


def test_confusion_file_is_in_list_order(scored) -> None:
    _, npz = scored
    with np.load(npz) as data:
        assert data["sample_ids"].tolist() == list_stems("test")


def test_bootstrap_cis_equal_the_authors_loop_in_list_order(scored) -> None:
    store, npz = scored
    table = score_run(npz, KEYS, REPLICATES, SEED)
    list_order = authors_bootstrap(per_image(store, list_stems("test")))
    got = table[table["metric"].isin(list_order)].set_index("metric")
    for name, (mean, lower, upper) in list_order.items():
        assert got.loc[name, "boot_mean"] == pytest.approx(mean, rel=1e-12, abs=1e-14), name
        assert got.loc[name, "ci_lower"] == pytest.approx(lower, rel=1e-12, abs=1e-14), name
        assert got.loc[name, "ci_upper"] == pytest.approx(upper, rel=1e-12, abs=1e-14), name
    # the same draws over store order (sorted ids) pick other images: other CIs
    store_order = authors_bootstrap(per_image(store, sorted(list_stems("test"))))
    assert any(store_order[name] != list_order[name] for name in list_order)
    fwiou_upper = list_order["Frequency_Weighted_IoU"][2]
    assert store_order["Frequency_Weighted_IoU"][2] != pytest.approx(fwiou_upper, abs=1e-3)
