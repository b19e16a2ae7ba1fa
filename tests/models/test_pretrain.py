"""Pretraining of the demo ViTs (`weights: pretrain`): reproducible snapshots that load strictly
through the normal build path, tokens that mean something, and the pretrain_weights rule."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
import yaml

from densebench.cli import main
from densebench.models.backbone import build_backbone, find_weights, load_state
from densebench.models.preflight import preflight
from densebench.models.pretrain import (
    CLASSES,
    input_side,
    normalise,
    pretrain_images,
    write_pretrained,
)
from densebench.models.weights import (
    WeightsError,
    check_snapshot,
    fetch_weights,
    is_pretrain,
    is_random_init,
    pretrain_identity,
)
from densebench.registry import AXES, Registries
from tests.conftest import REPO

DEMO = ("demo_vit_p8", "demo_vit_p14_reg4", "demo_vit_p16")
TINY = {"images": 2, "steps": 3, "batch_size": 4}
"""Settings that pretrain in well under a second (the weights mean nothing)."""


def tiny(record: dict, **settings) -> dict:
    """A copy of a pretrain record with tiny (or the given) pretraining settings."""
    return dict(record, pretrain={**record["pretrain"], **TINY, **settings})


@pytest.fixture(scope="module")
def shipped() -> Registries:
    """The shipped registries as they are (the `registries` fixture makes demo models random)."""
    return Registries.load(*(REPO / f"config/{axis}.yaml" for axis in AXES))


@pytest.fixture(scope="module")
def p16_snapshot(tmp_path_factory, shipped) -> Path:
    """demo_vit_p16 pretrained with its registry settings (what the demo loads)."""
    out = tmp_path_factory.mktemp("pretrained") / "demo_vit_p16"
    write_pretrained("demo_vit_p16", shipped.models["demo_vit_p16"], out)
    return out


# ---- the registry -------------------------------------------------------------------------


def test_demo_models_are_pretrained_here_not_downloaded(shipped):
    for name in DEMO:
        record = shipped.models[name]
        assert is_pretrain(record) and not is_random_init(record)
        assert pretrain_identity(name, record)["pretrain"] == record["pretrain"]
        with pytest.raises(WeightsError, match="nothing to download"):
            fetch_weights(name, record, Path("unused"))
    seeds = [shipped.models[name]["pretrain"]["seed"] for name in DEMO]
    cards = shipped.datasets
    demo_seeds = {
        cards[d]["synthetic"]["seed"] for d in ("demo_nuclei", "demo_glands", "demo_tissue")
    }
    assert len(set(seeds)) == 3 and not set(seeds) & demo_seeds


def test_a_record_without_pretrain_settings_is_rejected(shipped):
    record = {k: v for k, v in shipped.models["demo_vit_p8"].items() if k != "pretrain"}
    with pytest.raises(WeightsError, match="demo_vit_p8: not a pretrain demo model"):
        write_pretrained("demo_vit_p8", record, Path("unused"))
    record["pretrain"] = {"seed": 1, "steps": 2}
    with pytest.raises(WeightsError, match=r"lacks \['images', 'batch_size', 'lr', 'input_size'\]"):
        write_pretrained("demo_vit_p8", record, Path("unused"))


def test_preflight_skips_pretrain_models_without_a_hub_call(shipped, monkeypatch):
    def must_not_be_called(*args, **kwargs):
        raise AssertionError("the hub was contacted for a pretrain model")

    monkeypatch.setattr(huggingface_hub, "model_info", must_not_be_called)
    monkeypatch.setattr(huggingface_hub, "auth_check", must_not_be_called)
    rows = preflight({name: shipped.models[name] for name in DEMO})
    assert [row["status"] for row in rows] == ["pretrain"] * 3
    assert all("no download" in row["detail"] for row in rows)


# ---- the snapshot -------------------------------------------------------------------------


def test_the_same_record_gives_byte_identical_snapshots(tmp_path, shipped):
    record = tiny(shipped.models["demo_vit_p8"])
    write_pretrained("demo_vit_p8", record, tmp_path / "a")
    argv = ["pretrain", "--model", "demo_vit_p8", "--record", json.dumps(record)]
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0  # the CLI, as the rule calls it
    for name in ("model.safetensors", "SNAPSHOT.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "SNAPSHOT.json",
        "model.safetensors",
    ]
    write_pretrained(
        "demo_vit_p8", tiny(record, seed=record["pretrain"]["seed"] + 1), tmp_path / "c"
    )
    a = load_state(tmp_path / "a/model.safetensors")
    c = load_state(tmp_path / "c/model.safetensors")
    assert a.keys() == c.keys() and not torch.equal(a["pos_embed"], c["pos_embed"])


def test_snapshot_records_its_settings_and_passes_the_check(p16_snapshot, shipped):
    record = shipped.models["demo_vit_p16"]
    check_snapshot("demo_vit_p16", p16_snapshot)
    manifest = json.loads((p16_snapshot / "SNAPSHOT.json").read_text())
    assert manifest["source"] == "pretrain" and manifest["model"] == "demo_vit_p16"
    assert manifest["identity"] == pretrain_identity("demo_vit_p16", record)
    assert manifest["files"] == [
        {"path": "model.safetensors", "size": (p16_snapshot / "model.safetensors").stat().st_size}
    ]
    assert manifest["final_loss"] < 0.5 * manifest["first_loss"]
    assert manifest["classes"] == list(CLASSES)


def test_snapshot_loads_strictly_through_the_build_path(p16_snapshot, shipped):
    record = shipped.models["demo_vit_p16"]
    backbone = build_backbone("demo_vit_p16", record, p16_snapshot)
    saved = load_state(find_weights(p16_snapshot, "demo_vit_p16"))
    state = backbone.encoder.state_dict()
    assert state.keys() == saved.keys()
    assert all(torch.equal(state[k], saved[k]) for k in saved)
    assert not any(k.startswith("head.") and v.numel() for k, v in saved.items())
    with pytest.raises(ValueError, match="needs pretrained weights"):
        build_backbone("demo_vit_p16", record)


def test_a_snapshot_of_another_architecture_fails_clearly(p16_snapshot, shipped):
    with pytest.raises(ValueError, match="does not fit the registry architecture"):
        build_backbone("demo_vit_p8", shipped.models["demo_vit_p8"], p16_snapshot)


def test_a_partial_snapshot_is_refused(p16_snapshot, tmp_path):
    partial = tmp_path / "demo_vit_p16"
    shutil.copytree(p16_snapshot, partial)
    (partial / "model.safetensors").write_bytes(b"cut")
    with pytest.raises(FileNotFoundError, match="partial snapshot"):
        check_snapshot("demo_vit_p16", partial)


# ---- what the pretraining buys --------------------------------------------------------------


def centroid_accuracy(tokens: torch.Tensor, labels: torch.Tensor) -> float:
    """Balanced accuracy of nearest-centroid (cosine) classification of the patch tokens of
    the odd images by the class centroids of the even images' tokens."""
    tokens = torch.nn.functional.normalize(tokens, dim=-1)
    train, test = tokens[0::2].flatten(0, 1), tokens[1::2].flatten(0, 1)
    y_train, y_test = labels[0::2].flatten(), labels[1::2].flatten()
    classes = y_train.unique()
    centroids = torch.stack([train[y_train == c].mean(0) for c in classes])
    predicted = classes[(test @ torch.nn.functional.normalize(centroids, dim=-1).T).argmax(1)]
    recalls = [(predicted[y_test == c] == c).float().mean() for c in y_test.unique()]
    return float(torch.stack(recalls).mean())


def test_pretrained_tokens_separate_classes_better_than_random(p16_snapshot, shipped):
    record = shipped.models["demo_vit_p16"]
    side = input_side(record, 64)
    rgb, labels = pretrain_images(seed=20_000, images=6, size=side)  # held out: another seed
    onehot = torch.nn.functional.one_hot(torch.from_numpy(labels), len(CLASSES))
    patch_labels = torch.nn.functional.avg_pool2d(onehot.permute(0, 3, 1, 2).float(), 16)
    patch_labels = patch_labels.argmax(1).flatten(1)  # majority class of each patch
    x = normalise(rgb, record)
    torch.manual_seed(0)
    random = build_backbone("demo_vit_p16", dict(record, weights="random")).eval()
    pretrained = build_backbone("demo_vit_p16", record, p16_snapshot).eval()
    with torch.no_grad():
        scores = {
            name: centroid_accuracy(model(x), patch_labels)
            for name, model in (("random", random), ("pretrained", pretrained))
        }
    assert scores["pretrained"] > scores["random"] + 0.2, scores


# ---- the workflow ---------------------------------------------------------------------------


@pytest.mark.workflow
def test_demo_schedules_one_pretrain_job_per_demo_model(tmp_path):
    from tests.test_workflow import job_counts, snakemake

    (tmp_path / "config").symlink_to(REPO / "config")
    dry = snakemake(tmp_path, "-n", "--configfile", "config/demo.yaml")
    output = dry.stdout + dry.stderr
    counts = job_counts(output)
    assert counts["pretrain_weights"] == 3 and "download_weights" not in counts
    pretrained = re.findall(r"Pretraining the demo backbone (\w+) on", output)
    assert sorted(pretrained) == sorted(DEMO)


@pytest.mark.workflow
def test_editing_a_pretrain_setting_reschedules_the_pretraining(tmp_path):
    from tests.test_workflow import edit_yaml, planned, snakemake, write_config

    (tmp_path / "config").symlink_to(REPO / "config")
    models = yaml.safe_load((REPO / "config/models.yaml").read_text())
    for name in DEMO:
        models[name] = tiny(models[name])
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    files = {axis: str(REPO / f"config/{axis}.yaml") for axis in ("datasets", "strategies")}
    config = write_config(tmp_path, registries={**files, "models": str(tmp_path / "models.yaml")})
    target = ["resources/weights/demo_vit_p8", "--configfile", str(config), "--cores", "1"]
    snakemake(tmp_path, *target)
    check_snapshot("demo_vit_p8", tmp_path / "resources/weights/demo_vit_p8")
    assert planned(tmp_path, target) == {}
    edit_yaml(tmp_path / "models.yaml", lambda m: m["demo_vit_p8"].update(display_name="ViT-8"))
    assert planned(tmp_path, target) == {}  # a descriptive edit redoes nothing
    edit_yaml(tmp_path / "models.yaml", lambda m: m["demo_vit_p8"]["pretrain"].update(steps=4))
    assert planned(tmp_path, target) == {"pretrain_weights": 1, "total": 1}
