"""A shared training job (densebench.train.shared) gives each frozen-encoder run exactly what a
separate job gives it: best.pt byte for byte, the training log apart from timings, predictions;
for a model of every family. Runs that cannot share are refused, and a killed shared job
resumes every run exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from densebench.models.backbone import build_backbone
from densebench.models.stochastic import random_modules
from densebench.sharing import random_forward, random_rates
from densebench.spec import RunSpec, build_run_spec
from densebench.train.loop import train_run
from densebench.train.shared import take_staged, train_shared
from tests.models.backbone_helpers import family_kwargs, meta_backbone, record_for

SHARED = ("frozen", "cnn_adapter", "transformer_adapter")
TIMING = {"images_per_s", "epoch_s", "eta_s"}
WIDTH = 32
REDUCED = family_kwargs(1, WIDTH)
"""One-block random models of every family: timm, CONCH, transformers ViT and DINOv2, MUSK."""
RATES = {
    "uni_v1": {"drop_path_rate": 0.2, "depth": 2},  # timm: 0 in the first block
    "conch_v1_5": {"drop_path_rate": 0.2, "depth": 2},
    "phikon": {"hidden_dropout_prob": 0.2},
    "hibou_l": {"drop_path_rate": 0.2},
}
"""A dropout / drop-path rate each family's record can set."""


def specs_of(
    demo_config, registries, model: str, strategies=SHARED, epochs: int = 2, **kwargs
) -> list[RunSpec]:
    """Run specs of a model on demo_nuclei (a reduced random copy for hub models), one per
    strategy, at 4 x 4 patches, batch 2."""
    config = dict(demo_config, train=dict(demo_config["train"], epochs=epochs, batch_size=2))
    if model in REDUCED:
        record = record_for(registries, model, **{**REDUCED[model], **kwargs})
        record["embed_dim"] = WIDTH
        registries = dataclasses.replace(registries, models={**registries.models, model: record})
    specs = [build_run_spec(config, "demo_nuclei", model, s, registries) for s in strategies]
    side = 4 * int(specs[0].model_record["patch_size"])
    return [dataclasses.replace(spec, input_size=side) for spec in specs]


def log_rows(path: Path) -> list[dict]:
    """The training log without its timing columns."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name not in TIMING]
    return [[line.split(",")[i] for i in keep] for line in lines]


def train_both(specs, store, tmp_path) -> tuple[Path, Path]:
    """Train the runs separately and in one shared job; (separate root, staging folder)."""
    separate, staging = tmp_path / "separate", tmp_path / "staging"
    for spec in specs:
        train_run(spec, store, separate / spec.strategy)
    train_shared(specs, store, [tmp_path / "runs" / s.strategy for s in specs], staging)
    return separate, staging


@pytest.mark.parametrize("model", ["demo_vit_p16", *REDUCED])
def test_shared_job_equals_separate_runs_byte_for_byte(demo_config, registries, small_store,
                                                      tmp_path, model):  # fmt: skip
    specs = specs_of(demo_config, registries, model)
    separate, staging = train_both(specs, small_store, tmp_path)
    for spec in specs:
        alone, shared = separate / spec.strategy, staging / spec.strategy
        assert (shared / "best.pt").read_bytes() == (alone / "best.pt").read_bytes(), spec.strategy
        assert log_rows(shared / "train_log.csv") == log_rows(alone / "train_log.csv")
        record = json.loads((shared / "provenance.json").read_text())
        assert record["shared_job"] == "staging" and record["shared_runs"] == len(specs)
        job_s = record["device_hours"] * 3600 * len(specs)  # the run's share of the job
        assert job_s == pytest.approx(record["train_wall_s"], abs=0.06) and job_s > 0
        assert not (tmp_path / "runs" / spec.strategy / "last.pt").exists()


def test_shared_runs_predict_what_separate_runs_predict(demo_config, registries, small_store,
                                                        tmp_path):  # fmt: skip
    from densebench.evaluate.predict import predict_run

    specs = specs_of(demo_config, registries, "demo_vit_p8")
    separate, staging = train_both(specs, small_store, tmp_path)
    for spec in specs:
        run = tmp_path / "runs" / spec.strategy
        provenance = take_staged(spec, staging, run)
        assert provenance["training_identity"] and not (staging / spec.strategy).exists()
        for folder in (separate / spec.strategy, run):
            predict_run(folder / "best.pt", small_store, folder / "confusion.npz", spec=spec)
        ours = np.load(run / "confusion.npz")["matrices"]
        theirs = np.load(separate / spec.strategy / "confusion.npz")["matrices"]
        assert ours.sum() > 0 and np.array_equal(ours, theirs)


def test_take_staged_refuses_another_runs_outputs(demo_config, registries, small_store,
                                                  tmp_path):  # fmt: skip
    specs = specs_of(demo_config, registries, "demo_vit_p16", ("frozen", "cnn_adapter"))
    train_shared(specs, small_store, [tmp_path / s.strategy for s in specs], tmp_path / "stage")
    other = dataclasses.replace(specs[0], train=dataclasses.replace(specs[0].train, lr=0.5))
    with pytest.raises(SystemExit, match="another training identity"):
        take_staged(other, tmp_path / "stage", tmp_path / "frozen")
    with pytest.raises(SystemExit, match=r"left no best\.pt"):
        take_staged(specs[0], tmp_path / "elsewhere", tmp_path / "frozen")
    assert not (tmp_path / "frozen" / "best.pt").exists()


def test_runs_that_cannot_share_are_refused(demo_config, registries, small_store, tmp_path):
    specs = specs_of(demo_config, registries, "demo_vit_p16", ("frozen", "lora"))
    with pytest.raises(SystemExit, match="lora train the encoder"):
        train_shared(specs, small_store, [tmp_path / "a", tmp_path / "b"], tmp_path / "s")
    frozen, adapter = specs_of(demo_config, registries, "demo_vit_p16", SHARED[:2])
    adapter = dataclasses.replace(adapter, train=dataclasses.replace(adapter.train, seed=7))
    with pytest.raises(SystemExit, match="in more than the strategy"):
        train_shared([frozen, adapter], small_store, [tmp_path / "a", tmp_path / "b"], tmp_path)


@pytest.mark.parametrize("model", sorted(RATES))
def test_random_frozen_forward_is_refused(demo_config, registries, small_store, tmp_path,
                                         model):  # fmt: skip
    specs = specs_of(demo_config, registries, model, SHARED[:2], **RATES[model])
    record, fixes = specs[0].model_record, specs[0].fixes
    why = random_forward(model, record, fixes)
    assert why and next(iter(RATES[model])) in why
    assert random_modules(build_backbone(model, record))
    with pytest.raises(SystemExit, match="draws random numbers in training mode"):
        train_shared(specs, small_store, [tmp_path / "a", tmp_path / "b"], tmp_path / "s")
    assert random_forward(model, record, {**fixes, "frozen_encoder_eval": True}) is None


def test_every_registry_model_may_share_and_its_encoder_agrees(registries, demo_config):
    """No shipped record sets a rate, and no built encoder holds a random module: the plan's
    rule (record kwargs) and the job's (modules) agree on every model."""
    fixes = build_run_spec(demo_config, "demo_nuclei", "demo_vit_p8", "frozen", registries).fixes
    for name, record in registries.models.items():
        if record["family"] == "unet":
            continue
        assert random_rates(record) == {}, name
        assert random_forward(name, record, fixes) is None, name
        assert random_modules(meta_backbone(registries, name)) == [], name


def interrupt_after_saves(monkeypatch, count: int) -> None:
    """Make the job die (as a kill would) right after its `count`-th write of a last.pt."""
    from densebench.train import loop

    real, saves = loop.save_torch, []

    def save_then_die(obj, path):
        real(obj, path)
        if Path(path).name == "last.pt":
            saves.append(path)
            if len(saves) == count:
                raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_torch", save_then_die)


def test_killed_shared_job_resumes_every_run_exactly(demo_config, registries, small_store,
                                                     tmp_path, monkeypatch):  # fmt: skip
    """A shared job killed after its first epoch, one of its runs then taken one epoch further
    by a separate job also killed, and the shared job started again: every run ends with the
    uninterrupted shared job's bytes (the run further ahead waits for the others)."""
    specs = specs_of(demo_config, registries, "demo_vit_p16", epochs=3)
    whole = tmp_path / "whole"
    train_shared(specs, small_store, [tmp_path / "w" / s.strategy for s in specs], whole)
    runs = [tmp_path / "runs" / s.strategy for s in specs]
    with monkeypatch.context() as patch:
        interrupt_after_saves(patch, len(specs))
        with pytest.raises(KeyboardInterrupt):
            train_shared(specs, small_store, runs, tmp_path / "stage")
    epochs = [torch.load(r / "last.pt", weights_only=False)["epoch"] for r in runs]
    assert epochs == [1, 1, 1]
    with monkeypatch.context() as patch:
        interrupt_after_saves(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            train_run(specs[0], small_store, runs[0])
    assert torch.load(runs[0] / "last.pt", weights_only=False)["epoch"] == 2
    train_shared(specs, small_store, runs, tmp_path / "stage")
    for spec, run in zip(specs, runs, strict=True):
        staged = tmp_path / "stage" / spec.strategy
        assert (staged / "best.pt").read_bytes() == (whole / spec.strategy / "best.pt").read_bytes()
        assert log_rows(staged / "train_log.csv") == log_rows(
            whole / spec.strategy / "train_log.csv"
        )
        assert not (run / "last.pt").exists()
