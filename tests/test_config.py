"""Config loading: schema defaults, validation errors, registry paths."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from tests.conftest import REPO

from densebench.config import load_config, registry_path, validate_config


def test_defaults_are_the_papers_recipe():
    config = validate_config({"datasets": ["GlaS"], "models": ["uni_v1"], "strategies": ["lora"]})
    assert config["protocol"] == "paper"
    assert config["train"]["epochs"] == 150 and config["train"]["cosine_t_max"] == 100
    assert config["train"]["lr"] == 0.001 and config["train"]["batch_size"] == 8
    assert config["decoder"]["hidden_channels"] == 512
    assert config["evaluate"]["bootstrap_replicates"] == 1000


def test_shipped_configs_are_valid():
    paper = load_config(REPO / "config/config.yaml")
    assert len(paper["models"]) * len(paper["strategies"]) * len(paper["datasets"]) == 1530
    assert load_config(REPO / "config/demo.yaml")["train"]["max_input_size"] == 64


@pytest.mark.parametrize(
    "bad",
    [{"protocol": "fancy"}, {"train": {"epochs": 0}}, {"models": []}, {"unknown_key": 1}],
)
def test_invalid_values_are_rejected(bad):
    config = {"datasets": ["GlaS"], "models": ["uni_v1"], "strategies": ["lora"], **bad}
    with pytest.raises(jsonschema.ValidationError):
        validate_config(config)


def test_registry_paths_resolve_against_the_root(tmp_path):
    config = validate_config(yaml.safe_load((REPO / "config/demo.yaml").read_text()))
    assert registry_path(config, "models") == REPO / "config/models.yaml"
    config["registries"]["models"] = str(tmp_path / "m.yaml")
    assert registry_path(config, "models") == tmp_path / "m.yaml"
