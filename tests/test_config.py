"""Config loading: schema defaults, validation errors, registry paths."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from densebench.config import load_config, registry_path, validate_config
from tests.conftest import REPO


def test_schema_defaults_are_the_shipped_paper_recipe():
    """A config naming only the grid gets every setting of config/config.yaml from the schema."""
    paper = load_config(REPO / "config/config.yaml")
    minimal = validate_config({k: paper[k] for k in ("datasets", "models", "strategies")})
    assert minimal == paper


def test_shipped_demo_config_is_valid():
    load_config(REPO / "config/demo.yaml")


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
