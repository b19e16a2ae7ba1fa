"""Registries: every record is complete, names are checked with helpful messages."""

from __future__ import annotations

import json

import pytest

from densebench.config import load_config
from densebench.registry import Registries, UnknownNameError, records
from tests.conftest import FIXTURES, REPO

PUBLISHED_MODELS = [
    "PathOrchestra", "conch_v1_5", "conch_v1", "gigapath", "hibou_l", "hoptimus_0", "hoptimus_1",
    "kaiko-vitl14", "lunit_vits8", "midnight12k", "musk", "phikon", "phikon_v2", "uni_v1",
    "uni_v2", "virchow_v1", "virchow_v2",
]  # fmt: skip
PUBLISHED_DATASETS = [
    "BCSS", "COSAS24", "CRAG", "CoCaHis", "CoNIC2022", "CoNSeP", "EBHI", "GlaS", "Janowczyk",
    "Lizard", "NuCLS", "PanNuke", "RINGS", "TNBC", "WSSS4LUAD", "cpm15", "cpm17", "kumar",
]  # fmt: skip
PUBLISHED_STRATEGIES = ["frozen", "lora", "dora", "cnn", "transformer"]
"""File stems of the published results, one per strategy (Data/<stem>.json)."""


def test_paper_config_runs_the_published_grid(registries):
    """config/config.yaml's grid is the published one, every name in the registries and each
    strategy mapped to its results file."""
    paper = load_config(REPO / "config/config.yaml")
    assert sorted(paper["models"]) == sorted(PUBLISHED_MODELS)
    assert sorted(paper["datasets"]) == sorted(PUBLISHED_DATASETS)
    registries.check_names({axis: paper[axis] for axis in ("models", "datasets", "strategies")})
    published = [registries.strategies[name]["published"] for name in paper["strategies"]]
    assert sorted(published) == sorted(PUBLISHED_STRATEGIES)


def test_anchor_keys_are_not_records():
    assert records({"_norms": {}, "a": {}}) == {"a": {}}


def test_registries_match_their_schemas(registries):
    import jsonschema
    import yaml

    for axis in ("models", "datasets", "strategies"):
        schema = yaml.safe_load((REPO / f"workflow/schemas/{axis}.schema.yaml").read_text())
        jsonschema.validate(registries.axis(axis), schema)


def test_demo_models_cover_patch_sizes_and_prefix_layouts(registries):
    demo = {k: v for k, v in registries.models.items() if v.get("weights") == "random"}
    assert {m["patch_size"] for m in demo.values()} >= {8, 14, 16}
    assert {m["num_prefix_tokens"] for m in demo.values()} >= {1, 5}


def test_unknown_names_list_the_valid_ones(registries):
    with pytest.raises(UnknownNameError) as info:
        registries.check_names({"models": ["uni_v1", "virchow_v3"], "datasets": ["GlaS"]})
    message = str(info.value)
    assert "virchow_v3" in message and "Did you mean 'virchow_v2'" in message
    assert "virchow_v2" in message and "demo_vit_p8" in message


def test_unknown_axis_is_rejected(registries):
    with pytest.raises(ValueError, match="unknown axis"):
        registries.axis("losses")


def test_published_names_are_registry_names(registries):
    """The published results' dataset and model names are the registries' (reference excerpt)."""
    data = json.loads((FIXTURES / "published_excerpt.json").read_text())
    assert set(data) <= set(registries.datasets)
    for models in data.values():
        assert set(models) <= set(registries.models)


def test_missing_registry_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        Registries.load(tmp_path / "nope.yaml", tmp_path / "b", tmp_path / "c")
