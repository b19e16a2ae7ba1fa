"""Training and prediction of one run on a small converted store (CPU, deterministic)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch

from densebench.predict import predict_run, run_keys
from densebench.runtime import confusion
from densebench.spec import build_run_spec
from densebench.train import LOG_FIELDS, train_run


@pytest.fixture(scope="module")
def spec(demo_config, registries):
    """A 2-epoch LoRA run of the patch-16 demo model."""
    config = dict(demo_config, train=dict(demo_config["train"], epochs=2, batch_size=4))
    return build_run_spec(config, "demo_nuclei", "demo_vit_p16", "lora", registries)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spec, small_store):
    """A trained run folder and its predictions."""
    out = tmp_path_factory.mktemp("run")
    train_run(spec, small_store, out)
    predict_run(out / "best.pt", small_store, out / "confusion.npz")
    return out


def test_outputs_and_log(trained, spec):
    assert {p.name for p in trained.iterdir()} == {
        "best.pt", "last.pt", "train_log.csv", "provenance.json", "confusion.npz"
    }  # fmt: skip
    rows = list(csv.DictReader((trained / "train_log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and list(rows[0]) == list(LOG_FIELDS)
    assert float(rows[0]["lr"]) == 0.0 and float(rows[1]["lr"]) == pytest.approx(1e-3)


def test_best_checkpoint_holds_no_frozen_backbone_weight(trained):
    state = torch.load(trained / "best.pt", weights_only=False)["state"]
    backbone = [k for k in state if k.startswith("backbone.")]
    assert backbone and all("lora_" in k for k in backbone)
    assert any(k.startswith("decoder.") for k in state)


def test_confusion_file(trained, spec, small_store):
    from densebench.store import DatasetStore

    with np.load(trained / "confusion.npz") as data:
        matrices, ids = data["matrices"], data["sample_ids"]
    store = DatasetStore(small_store)
    assert matrices.shape == (len(store.indices("test")), 4, 4)
    size = spec["input_size"]
    assert (matrices.sum(axis=(1, 2)) == size * size).all()  # resize mode: scored at S x S
    assert list(ids) == [store.samples[i]["id"] for i in store.indices("test")]
    assert run_keys(trained / "confusion.npz") == {
        "dataset": "demo_nuclei", "model": "demo_vit_p16", "strategy": "lora"
    }  # fmt: skip


def test_same_spec_gives_the_same_numbers(trained, spec, small_store, tmp_path):
    train_run(spec, small_store, tmp_path)
    predict_run(tmp_path / "best.pt", small_store, tmp_path / "confusion.npz")
    a, b = np.load(trained / "confusion.npz"), np.load(tmp_path / "confusion.npz")
    assert np.array_equal(a["matrices"], b["matrices"])
    assert (trained / "train_log.csv").read_text().splitlines()[1].split(",")[:4] == (
        tmp_path / "train_log.csv"
    ).read_text().splitlines()[1].split(",")[:4]


def test_complete_last_checkpoint_is_resumed_not_retrained(trained, spec, small_store, tmp_path):
    shutil.copy(trained / "last.pt", tmp_path / "last.pt")
    train_run(spec, small_store, tmp_path)
    a = torch.load(trained / "best.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "best.pt", weights_only=False)["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_foreign_last_checkpoint_is_refused(trained, spec, small_store, tmp_path):
    shutil.copy(trained / "last.pt", tmp_path / "last.pt")
    other = dict(spec, train=dict(spec["train"], lr=5e-4))
    with pytest.raises(ValueError, match="different training configuration"):
        train_run(other, small_store, tmp_path)


def test_confusion_drops_ignore_pixels():
    pred = torch.tensor([[[0, 1], [1, 1]]])
    target = torch.tensor([[[0, 255], [1, 0]]])
    assert confusion(pred, target, 2, 255).tolist() == [[[1, 1], [0, 1]]]
