"""Named fixes: protocol defaults, single overrides, stage routing, scoring options."""

from __future__ import annotations

from dataclasses import replace

import pytest

from densebench.fixes import FIXES, resolve_fixes, scoring_options, stage_fixes
from densebench.identity import prediction_identity, training_identity
from densebench.spec import build_run_spec


def base(**extra) -> dict:
    """A minimal validated-looking config."""
    return {"protocol": "paper", "fixes": {}, "evaluate": {"exclude_background": False}, **extra}


def test_protocol_sets_every_fix():
    assert not any(resolve_fixes(base()).values())
    assert all(resolve_fixes(base(protocol="corrected")).values())


def test_single_fix_overrides_the_protocol():
    fixes = resolve_fixes(base(fixes={"cosine_period_epochs": True}))
    assert fixes["cosine_period_epochs"] and not fixes["bf16_autocast"]
    fixes = resolve_fixes(base(protocol="corrected", fixes={"bf16_autocast": False}))
    assert not fixes["bf16_autocast"] and fixes["standard_metrics"]


def test_unknown_fix_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid fixes: cosine_period_epochs"):
        resolve_fixes(base(fixes={"faster": True}))


def test_every_fix_has_a_stage_and_a_description():
    assert {stage for stage, _ in FIXES.values()} == {"train", "predict", "score"}
    assert all(len(text) > 20 for _, text in FIXES.values())
    assert set(stage_fixes(resolve_fixes(base()), "score")) == {"standard_metrics"}


def test_scoring_options():
    assert scoring_options(base()) == {"definitions": "paper", "exclude_background": False}
    corrected = base(protocol="corrected", evaluate={"exclude_background": True})
    assert scoring_options(corrected) == {"definitions": "standard", "exclude_background": True}
    with pytest.raises(ValueError, match="needs the standard metric definitions"):
        scoring_options(base(evaluate={"exclude_background": True}))


def test_scoring_and_prediction_fixes_do_not_change_the_training(demo_config, registries):
    def spec(**fixes):
        config = dict(demo_config, fixes=fixes)
        return build_run_spec(config, "demo_tissue", "demo_vit_p8", "lora", registries)

    plain = spec()
    assert "standard_metrics" not in plain.fixes  # scoring fixes never reach the train job
    assert spec(standard_metrics=True) == plain
    native = spec(native_resolution_scoring=True)
    assert training_identity(native) == training_identity(plain)
    assert prediction_identity(native) != prediction_identity(plain)
    assert training_identity(spec(cosine_period_epochs=True)) != training_identity(plain)
    evaluated = replace(plain, evaluate=replace(plain.evaluate, inference="sliding_window"))
    assert training_identity(evaluated) == training_identity(plain)
    assert prediction_identity(evaluated) != prediction_identity(plain)


def test_model_normalisation_fix_reaches_the_spec(demo_config, registries):
    config = dict(demo_config, fixes={"model_normalisation": True})
    spec = build_run_spec(config, "demo_tissue", "demo_vit_p14_reg4", "frozen", registries)
    assert spec.normalisation.mean == (0.5, 0.5, 0.5)


def test_standard_lora_init_is_a_training_fix(demo_config, registries):
    assert FIXES["standard_lora_init"][0] == "train"
    assert not resolve_fixes(base())["standard_lora_init"]  # paper: the authors' lora_a init
    config = dict(demo_config, fixes={"standard_lora_init": True})
    fixed = build_run_spec(config, "demo_tissue", "demo_vit_p8", "lora", registries)
    plain = build_run_spec(demo_config, "demo_tissue", "demo_vit_p8", "lora", registries)
    assert fixed.fixes["standard_lora_init"]
    assert training_identity(fixed) != training_identity(plain)
