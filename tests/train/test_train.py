"""Training and prediction of one run on a small converted store (CPU, deterministic)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import densebench.train.loop
from densebench.evaluate.confusion import run_keys
from densebench.evaluate.predict import predict_run
from densebench.spec import RunSpec, build_run_spec
from densebench.train.loop import LOG_FIELDS, train_run


@pytest.fixture(scope="module")
def spec(demo_config, registries):
    """A 2-epoch LoRA run of the patch-16 demo model, the first epoch a warmup epoch."""
    train = dict(demo_config["train"], epochs=2, batch_size=4, warmup_epochs=1)
    config = dict(demo_config, train=train)
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
        "best.pt",
        "train_log.csv",
        "provenance.json",
        "confusion.npz",
    }  # fmt: skip  (last.pt is a resume file, removed once training is complete)
    rows = list(csv.DictReader((trained / "train_log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and list(rows[0]) == list(LOG_FIELDS)
    assert float(rows[0]["lr"]) == 0.0 and float(rows[1]["lr"]) == pytest.approx(1e-3)


def test_best_checkpoint_holds_no_frozen_backbone_weight(trained):
    state = torch.load(trained / "best.pt", weights_only=False)["state"]
    backbone = [k for k in state if k.startswith("backbone.")]
    assert backbone and all("lora_" in k for k in backbone)
    assert any(k.startswith("decoder.") for k in state)


def test_confusion_file(trained, spec, small_store):
    from densebench.data.store import DatasetStore

    with np.load(trained / "confusion.npz") as data:
        matrices, ids = data["matrices"], data["sample_ids"]
    store = DatasetStore(small_store)
    assert matrices.shape == (len(store.indices("test")), 4, 4)
    size = spec.input_size
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


def preempted_after_last_epoch(spec, store, out, monkeypatch) -> None:
    """Train a run and stop it right after its last epoch's checkpoint (a job preempted there)."""

    def preempt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(densebench.train.loop, "finish", preempt)
        with pytest.raises(KeyboardInterrupt):
            train_run(spec, store, out)
    assert {p.name for p in out.iterdir()} == {"last.pt"}  # no output exists before the finish


def test_run_preempted_after_its_last_epoch_finishes_without_retraining(
    trained, spec, small_store, tmp_path, monkeypatch, capsys
):
    preempted_after_last_epoch(spec, small_store, tmp_path, monkeypatch)
    capsys.readouterr()
    train_run(spec, small_store, tmp_path)
    printed = capsys.readouterr().out
    assert "after epoch 2" in printed and "epoch 1/2" not in printed  # no epoch retrained
    assert {p.name for p in tmp_path.iterdir()} == {"best.pt", "train_log.csv", "provenance.json"}
    a = torch.load(trained / "best.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "best.pt", weights_only=False)["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    timing = ("images_per_s", "epoch_s", "eta_s")
    logged = [
        [{k: v for k, v in row.items() if k not in timing} for row in csv.DictReader(f.open())]
        for f in (trained / "train_log.csv", tmp_path / "train_log.csv")
    ]
    assert logged[0] == logged[1]


def test_last_checkpoint_of_another_recipe_is_set_aside(
    trained, spec, small_store, tmp_path, monkeypatch
):
    other = replace(spec, train=replace(spec.train, lr=5e-4))
    preempted_after_last_epoch(other, small_store, tmp_path, monkeypatch)
    train_run(spec, small_store, tmp_path)  # no error: trains from scratch
    a = torch.load(trained / "best.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "best.pt", weights_only=False)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "last.pt").exists()


def test_checkpoints_store_the_spec_as_plain_values(trained, spec):
    saved = torch.load(trained / "best.pt", weights_only=False)["spec"]
    assert type(saved) is dict and json.loads(json.dumps(saved)) == saved  # no class pickled
    assert saved == spec.to_dict() and RunSpec.from_dict(saved) == spec


def test_prediction_refuses_a_checkpoint_of_another_recipe(trained, spec, small_store, tmp_path):
    other = replace(spec, train=replace(spec.train, lr=5e-4))
    with pytest.raises(ValueError, match="another training configuration"):
        predict_run(trained / "best.pt", small_store, tmp_path / "c.npz", spec=other)
    assert not (tmp_path / "c.npz").exists()


def test_loader_workers_change_no_number(trained, spec, small_store, tmp_path):
    """Two loader workers (uint8 batches, per-sample seeds) train exactly the same run."""
    execution = replace(spec.train.execution, num_workers=2)
    train_run(replace(spec, train=replace(spec.train, execution=execution)), small_store, tmp_path)
    a = torch.load(trained / "best.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "best.pt", weights_only=False)["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    timing = ("images_per_s", "epoch_s", "eta_s")
    logged = [
        [{k: v for k, v in row.items() if k not in timing} for row in csv.DictReader(f.open())]
        for f in (trained / "train_log.csv", tmp_path / "train_log.csv")
    ]
    assert logged[0] == logged[1]
