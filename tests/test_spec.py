"""Run specs: one typed, frozen spec per cell, canonical JSON both ways, strict parsing."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from densebench.config import SCHEMA
from densebench.spec import (
    DecoderSettings,
    EvaluateSettings,
    Execution,
    RunSpec,
    TrainRecipe,
    build_run_spec,
)
from densebench.variants import PLAN_KEYS


@pytest.fixture(scope="module")
def spec(demo_config, registries) -> RunSpec:
    """A demo LoRA cell."""
    return build_run_spec(demo_config, "demo_glands", "demo_vit_p14_reg4", "lora", registries)


def test_run_spec_resolves_the_cell(spec, demo_config):
    assert spec.input_size == 112 and spec.num_classes == 3 and spec.ignore_index == 255  # demo S
    assert (spec.dataset, spec.model, spec.strategy) == ("demo_glands", "demo_vit_p14_reg4", "lora")
    run_settings = {k: v for k, v in demo_config["train"].items() if k not in PLAN_KEYS}
    assert spec.train.to_dict() == run_settings  # the plan's settings are not a run's
    assert spec.decoder.to_dict() == demo_config["decoder"]
    assert spec.evaluate.to_dict() == demo_config["evaluate"]
    assert "standard_metrics" not in spec.fixes  # scoring fixes never reach a run


def test_run_spec_is_canonical_json_both_ways(spec):
    text = spec.to_json()
    assert RunSpec.from_json(text) == spec and RunSpec.from_json(text).to_json() == text
    assert json.loads(text) == spec.to_dict() and RunSpec.from_dict(spec.to_dict()) == spec
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def test_run_spec_is_read_only(spec):
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.input_size = 64
    with pytest.raises(TypeError):
        spec.model_record["patch_size"] = 16
    with pytest.raises(TypeError):
        spec.fixes["bf16_autocast"] = True
    replaced = dataclasses.replace(spec, fixes=dict(spec.fixes, bf16_autocast=True))
    with pytest.raises(TypeError):  # plain dicts given to replace are wrapped too
        replaced.fixes["bf16_autocast"] = False
    plain = spec.to_dict()
    plain["model_record"]["patch_size"] = 99  # an independent copy
    assert spec.model_record["patch_size"] == 14


def test_the_spec_does_not_share_the_registry_records(spec, registries):
    record = registries.models["demo_vit_p14_reg4"]
    assert spec.model_record == record
    assert spec.model_record["normalisation"] is not record["normalisation"]


def test_unknown_and_missing_keys_are_errors(spec):
    data = spec.to_dict()
    with pytest.raises(ValueError, match=r"run spec: unknown keys \['extra'\]"):
        RunSpec.from_dict(dict(data, extra=1))
    train = dict(data["train"], warmup=3)
    with pytest.raises(ValueError, match=r"train: unknown keys \['warmup'\]"):
        RunSpec.from_dict(dict(data, train=train))
    train = {k: v for k, v in data["train"].items() if k != "compile"}
    with pytest.raises(ValueError, match=r"missing keys \['compile'\]"):
        RunSpec.from_dict(dict(data, train=train))


def test_the_types_cover_the_config_schema():
    """Every setting of the schema's train, decoder and evaluate sections has a field, so none
    can silently drop out of the spec (and of the identities)."""
    sections = yaml.safe_load(SCHEMA.read_text())["properties"]
    # loss: no config key, the model's recipe sets it (densebench.spec.UNET_PAPER_RECIPE)
    train = {f.name for f in dataclasses.fields(TrainRecipe)} - {"execution", "loss"}
    train |= {f.name for f in dataclasses.fields(Execution)}
    assert set(sections["train"]["properties"]) == train | set(PLAN_KEYS)  # the plan's keys
    for name, cls in (("decoder", DecoderSettings), ("evaluate", EvaluateSettings)):
        assert set(sections[name]["properties"]) == {f.name for f in dataclasses.fields(cls)}


def test_values_are_kept_as_given(spec):
    """An int in the config stays an int: the JSON (and so the identities) are the config's."""
    data = spec.to_dict()
    data["train"] = dict(data["train"], grad_clip_norm=5, lr=0.001)
    text = RunSpec.from_dict(data).to_json()
    assert '"grad_clip_norm":5,' in text and '"lr":0.001,' in text
