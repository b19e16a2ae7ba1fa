"""Run variants (densebench.variants): folder names, the patch rule at a requested size, seeds."""

from __future__ import annotations

import pytest

from densebench.config import load_config
from densebench.geometry import patch_rule_size
from densebench.registry import Registries
from densebench.spec import build_run_spec
from densebench.variants import (
    Variant,
    of_run_folder,
    seed_variant,
    training_seeds,
    variant_train,
)
from tests.conftest import REPO

REGISTRIES = Registries.load(
    *(REPO / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
)


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("", Variant()),
        ("resize512", Variant(size=512)),
        ("seed7", Variant(seed=7)),
        ("resize4096__seed43", Variant(size=4096, seed=43)),
    ],
)
def test_names_round_trip(name, variant):
    assert Variant.parse(name) == variant
    assert variant.name == name


@pytest.mark.parametrize("bad", ["resize", "seed", "resize512seed7", "seed7__resize512", "x1"])
def test_malformed_names_are_refused(bad):
    with pytest.raises(ValueError, match="resize<S>, seed<n>"):
        Variant.parse(bad)


def test_run_folder_variant():
    assert of_run_folder("frozen__resize1024") == Variant(size=1024)
    assert of_run_folder("lora_r4") == Variant()


@pytest.mark.parametrize(
    ("model", "size", "side"),
    [
        ("uni_v1", 1024, 1024),  # patch 16
        ("hoptimus_0", 1024, 1022),  # patch 14: 73 x 14
        ("hoptimus_0", 4096, 4088),
        ("lunit_vits8", 256, 256),  # patch 8, rounding step 16
        ("lunit_vits8", 1000, 992),
        ("kaiko-vitl14", 2048, 2044),
    ],
)
def test_patch_rule_at_requested_size(model, size, side):
    assert patch_rule_size(size, REGISTRIES.models[model]) == side


def test_the_side_is_the_authors_s_wherever_their_code_can_run_it():
    """The authors take S from `__resize<S>` as is; their code runs only at patch multiples
    (config/README.md, "Where this release still differs"). At every default S and every
    patch-14/16 model ours is a patch multiple within one patch below S, and S itself whenever
    S is a multiple: for the paper's ablation model (UNI, patch 16) at every default S."""
    config = load_config(REPO / "config/config.yaml")
    ablation = config["ablations"]["input_size"]
    models = {
        name: record
        for name, record in REGISTRIES.models.items()
        if record["patch_size"] in (14, 16) and not record.get("fixed_input_size")
    }
    assert {14, 16} <= {record["patch_size"] for record in models.values()}
    for size in ablation["sizes"]:
        for name, record in models.items():
            patch = int(record["patch_size"])
            side = patch_rule_size(size, record)
            assert side % patch == 0 and size - patch < side <= size, (name, size)
            assert side == size or size % patch, (name, size)
            spec = build_run_spec(config, "CRAG", name, "frozen", REGISTRIES, f"resize{size}")
            assert spec.input_size == side
    for name in ablation["models"]:
        assert [patch_rule_size(s, REGISTRIES.models[name]) for s in ablation["sizes"]] == list(
            ablation["sizes"]
        )


def test_fixed_size_model_is_refused_with_the_remedy():
    with pytest.raises(ValueError, match=r"ablations\.input_size\.models"):
        patch_rule_size(512, REGISTRIES.models["musk"])


def test_variant_spec_changes_only_size_or_seed():
    config = load_config(REPO / "config/config.yaml")
    base = build_run_spec(config, "CRAG", "hoptimus_0", "frozen", REGISTRIES)
    big = build_run_spec(config, "CRAG", "hoptimus_0", "frozen", REGISTRIES, "resize2048")
    other = build_run_spec(config, "CRAG", "hoptimus_0", "frozen", REGISTRIES, "seed7")
    assert (base.input_size, big.input_size, other.input_size) == (994, 2044, 994)
    assert (base.train.seed, big.train.seed, other.train.seed) == (42, 42, 7)
    assert base.training_identity() != big.training_identity() != other.training_identity()
    assert big.to_dict()["train"]["input_size"] == 2044


def test_seeds_axis_must_hold_the_cells_seed():
    assert training_seeds({"seed": 42, "seeds": None}) == [42]
    assert training_seeds({"seed": 42, "seeds": [7, 42]}) == [7, 42]
    with pytest.raises(ValueError, match=r"add it to train\.seeds"):
        training_seeds({"seed": 42, "seeds": [1, 2]})
    train = {"seed": 42, "seeds": [42, 7]}
    assert seed_variant(42, train) == Variant() and seed_variant(7, train).name == "seed7"
    assert "seeds" not in variant_train(train, Variant(seed=7), REGISTRIES.models["uni_v1"])
