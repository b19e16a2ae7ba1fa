"""Model-input geometry: the paper's input-size rule, decoder scales, normalisation per fix."""

from __future__ import annotations

import pytest

from densebench.geometry import Normalisation, decoder_scales, input_size, normalisation

PAPER_DATASETS = [
    "BCSS", "COSAS24", "CRAG", "CoCaHis", "CoNIC2022", "CoNSeP", "EBHI", "GlaS", "Janowczyk",
    "Lizard", "NuCLS", "PanNuke", "RINGS", "TNBC", "WSSS4LUAD", "cpm15", "cpm17", "kumar",
]  # fmt: skip


@pytest.mark.parametrize("dataset", PAPER_DATASETS)
@pytest.mark.parametrize("model", ["uni_v1", "uni_v2", "lunit_vits8"])
def test_rule_reproduces_the_papers_input_sizes(registries, dataset, model):
    card, record = registries.datasets[dataset], registries.models[model]
    patch = record.get("input_size_patch", record["patch_size"])
    assert input_size(card, record, 1000) == card["paper_input_size"][patch]


def test_musk_is_fixed_at_384(registries):
    for dataset in PAPER_DATASETS:
        assert input_size(registries.datasets[dataset], registries.models["musk"], 1000) == 384


def test_override_must_be_a_patch_multiple(registries):
    card, record = registries.datasets["GlaS"], registries.models["uni_v2"]
    assert input_size(card, record, 1000, override=224) == 224
    with pytest.raises(ValueError, match="nearest valid sizes: 210, 224"):
        input_size(card, record, 1000, override=220)


def test_images_smaller_than_a_patch_are_rejected(registries):
    card = dict(registries.datasets["GlaS"], min_side=10)
    with pytest.raises(ValueError, match="smaller than one patch"):
        input_size(card, registries.models["uni_v1"], 1000)


@pytest.mark.parametrize("patch", [8, 14, 16])
def test_decoder_scales_multiply_to_the_patch_size(patch):
    product = 1.0
    for s in decoder_scales(patch):
        product *= s
    assert product == patch
    with pytest.raises(ValueError, match="supported"):
        decoder_scales(32)


def test_normalisation_follows_the_fix(registries):
    lunit = registries.models["lunit_vits8"]
    assert normalisation(lunit, own=False).mean[0] == pytest.approx(0.485)
    assert normalisation(lunit, own=True).mean[0] == pytest.approx(0.70322989)


def test_normalisation_is_exactly_mean_and_std():
    norm = Normalisation.from_dict({"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    assert norm.to_dict() == {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    with pytest.raises(ValueError, match="exactly mean and std"):
        Normalisation.from_dict({"mean": [0.5] * 3, "std": [0.25] * 3, "scale": 255})
