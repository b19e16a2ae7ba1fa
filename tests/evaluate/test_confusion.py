"""The confusion module: per-image matrices and the confusion file (write, load, run keys)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densebench.evaluate.confusion import load_confusion, run_keys, write_confusion
from densebench.evaluate.predict import confusion_matrices
from densebench.variants import RUN_KEYS

KEYS = {"dataset": "TNBC", "model": "uni_v1", "strategy": "lora"}


def test_confusion_counts_every_valid_pixel_once():
    pred = torch.randint(0, 3, (2, 5, 5), generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 3, (2, 5, 5), generator=torch.Generator().manual_seed(1))
    counts = confusion_matrices(pred, target, 3, 255)
    assert counts.sum().item() == 50
    assert counts[0].trace().item() == int((pred[0] == target[0]).sum())


def test_confusion_drops_ignore_pixels():
    pred = torch.tensor([[[0, 1], [1, 1]]])
    target = torch.tensor([[[0, 255], [1, 0]]])
    assert confusion_matrices(pred, target, 2, 255).tolist() == [[[1, 1], [0, 1]]]


def test_confusion_file_round_trip(tmp_path):
    matrices = np.arange(2 * 3 * 3, dtype=np.int64).reshape(2, 3, 3)
    path = tmp_path / "run" / "confusion.npz"
    write_confusion(path, matrices, ["a", "b"], ["bg", "x", "y"], KEYS)
    assert [p.name for p in path.parent.iterdir()] == ["confusion.npz"]  # no temporary left
    loaded, ids, classes = load_confusion(path)
    assert np.array_equal(loaded, matrices) and loaded.dtype == np.int64
    assert ids.tolist() == ["a", "b"] and classes.tolist() == ["bg", "x", "y"]
    assert run_keys(path) == KEYS
    with np.load(path) as data:
        assert sorted(data.files) == ["classes", "matrices", "run_keys", "sample_ids"]
        assert data["run_keys"].tolist() == [KEYS[k] for k in RUN_KEYS]


def test_load_confusion_checks_the_arrays(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, matrices=np.zeros((2, 3, 3)), sample_ids=np.array(["a"]))
    with pytest.raises(ValueError, match=r"missing arrays \['classes'\]"):
        load_confusion(path)
    np.savez(path, matrices=np.zeros((2, 3, 3)), sample_ids=np.array(["a"]), classes=["x", "y"])
    with pytest.raises(ValueError, match="does not match 2 classes"):
        load_confusion(path)
    np.savez(path, matrices=np.zeros((2, 2, 2)), sample_ids=np.array(["a"]), classes=["x", "y"])
    with pytest.raises(ValueError, match="1 sample_ids for 2 matrices"):
        load_confusion(path)
