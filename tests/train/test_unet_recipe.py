"""The UNet baseline's recipe: under `paper` the authors' configs/unet.yaml (cross-entropy with
ignore index 255 at batch 4), with the `unet_grid_recipe` fix the grid's (soft Dice at
train.batch_size); the grid's PFM runs are untouched either way."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from densebench.config import ROOT, load_config
from densebench.fixes import FIXES
from densebench.identity import training_identity
from densebench.spec import UNET_PAPER_RECIPE, RunSpec, TrainRecipe, build_run_spec
from densebench.train.losses import cross_entropy_loss, dice_loss
from densebench.variants import PLAN_KEYS


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config(ROOT / "config/config.yaml")


def with_fixes(config: dict, **changes) -> dict:
    """A copy of a config with other top-level values (e.g. protocol, fixes)."""
    return {**copy.deepcopy(config), **changes}


def grid_settings(config: dict) -> dict:
    """The config's train section as a grid run's spec holds it (the plan's keys stripped:
    seeds are a grid axis, share_frozen_backbone an execution choice of the plan)."""
    return {k: v for k, v in config["train"].items() if k not in PLAN_KEYS}


def test_under_paper_the_unet_trains_with_cross_entropy_at_batch_4(paper, registries):
    spec = build_run_spec(paper, "GlaS", "unet", "full", registries)
    assert spec.train.loss == "cross_entropy" and spec.train.batch_size == 4
    assert spec.ignore_index == 255  # the authors' CrossEntropyLoss(ignore_index=255)
    assert spec.train.to_dict() == {**grid_settings(paper), **UNET_PAPER_RECIPE}
    assert paper["train"]["batch_size"] == 8  # the grid's batch, which the UNet does not take
    trained = training_identity(spec)["train"]
    assert trained["loss"] == "cross_entropy" and trained["batch_size"] == 4
    assert RunSpec.from_json(spec.to_json()) == spec  # the loss travels with the spec


@pytest.mark.parametrize(
    "changes", [{"protocol": "corrected"}, {"fixes": {"unet_grid_recipe": True}}]
)
def test_with_the_fix_the_unet_takes_the_grid_recipe(paper, registries, changes):
    theirs = build_run_spec(paper, "GlaS", "unet", "full", registries)
    spec = build_run_spec(with_fixes(paper, **changes), "GlaS", "unet", "full", registries)
    assert spec.train.loss == "dice" and spec.train.batch_size == paper["train"]["batch_size"]
    assert "loss" not in spec.train.to_dict()
    assert "unet_grid_recipe" in training_identity(spec)["fixes"]
    assert training_identity(spec) != training_identity(theirs)  # the UNet's run reruns


def test_the_loss_alone_changes_the_unets_identity(demo_config, registries):
    """The demo trains at batch 4 anyway: only the loss tells the two recipes apart."""
    assert demo_config["train"]["batch_size"] == UNET_PAPER_RECIPE["batch_size"]
    fixed = with_fixes(demo_config, fixes={"unet_grid_recipe": True})
    ours = build_run_spec(fixed, "demo_glands", "demo_unet", "full", registries)
    theirs = build_run_spec(demo_config, "demo_glands", "demo_unet", "full", registries)
    assert theirs.train.loss == "cross_entropy" and ours.train.loss == "dice"
    ours_train, theirs_train = (training_identity(s)["train"] for s in (ours, theirs))
    assert {k: v for k, v in theirs_train.items() if k != "loss"} == ours_train


def test_the_grids_pfm_runs_are_unchanged(paper, registries, monkeypatch):
    """Every PFM x strategy of the paper grid, under `paper` and `corrected`: the soft Dice at
    the grid's batch, no `loss` key, and the same spec and training identity as without the new
    fix (the code before it): a PFM run never reruns for it."""
    cells = [("GlaS", m, s) for m in paper["models"] for s in paper["strategies"]]
    configs = [paper, with_fixes(paper, protocol="corrected")]
    now = {}
    for dataset, model, strategy in cells:
        for i, config in enumerate(configs):
            spec = build_run_spec(config, dataset, model, strategy, registries)
            assert spec.train == TrainRecipe.from_dict(grid_settings(paper))
            assert spec.train.loss == "dice" and "loss" not in spec.train.to_dict()
            assert "unet_grid_recipe" not in spec.fixes  # no effect on it: not in its identity
            now[i, model, strategy] = training_identity(spec), spec.to_dict()
    monkeypatch.delitem(FIXES, "unet_grid_recipe")
    for (i, model, strategy), (identity, plain) in now.items():
        fixes = {k: v for k, v in configs[i]["fixes"].items() if k in FIXES}
        before = build_run_spec(with_fixes(configs[i], fixes=fixes), "GlaS", model, strategy,
                                registries)  # fmt: skip
        assert identity == training_identity(before)
        assert plain == before.to_dict()


def test_cross_entropy_is_the_authors_and_skips_ignore_pixels():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 6, 5, generator=gen)
    target = torch.randint(0, 3, (2, 6, 5), generator=gen)
    assert torch.allclose(cross_entropy_loss(logits, target), F.cross_entropy(logits, target))
    ignored = target.clone()
    ignored[:, :2] = 255
    kept = ignored != 255
    by_hand = -logits.log_softmax(1).gather(1, target.unsqueeze(1)).squeeze(1)[kept].mean()
    assert torch.allclose(cross_entropy_loss(logits, ignored), by_hand)
    assert cross_entropy_loss(logits.half(), target).dtype == torch.float32


def test_a_training_step_of_the_unet_uses_its_recipes_loss(demo_config, registries):
    """One CPU step of the demo UNet on 32-px inputs: cross-entropy under `paper`, the soft
    Dice with the fix; the step returns the loss of the logits before it and moves the
    weights."""
    from densebench.models.segmenter import build_model
    from densebench.train.loop import Trainer

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 32, 32, generator=gen)
    y = torch.randint(0, 3, (4, 32, 32), generator=gen)
    y[0, :4] = 255  # ignore pixels: the CE path must skip them
    fixed = with_fixes(demo_config, fixes={"unet_grid_recipe": True})
    for config, loss in ((demo_config, cross_entropy_loss), (fixed, dice_loss)):
        spec = build_run_spec(config, "demo_glands", "demo_unet", "full", registries)
        model = build_model(spec)
        trainer = Trainer(model, spec, torch.device("cpu"))
        assert trainer.loss is loss
        model.train()
        with torch.no_grad():
            expected = loss(model(x), y, spec.ignore_index)
        before = [p.detach().clone() for p in trainer.params]
        value = trainer.step(x, y)
        assert torch.isfinite(value) and torch.allclose(value, expected, atol=1e-6)
        assert any(not torch.equal(p, q) for p, q in zip(before, trainer.params, strict=True))
