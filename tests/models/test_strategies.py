"""Strategies on the paper's models: trainable parameters against protocol.md §2, the authors'
DoRA, their LoRA quirks (no adapter outside timm attention nor outside their name whitelist,
their lora_a initialisation) and the fixes."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from densebench.config import ROOT, load_config
from densebench.lora_whitelist import paper_adapts
from densebench.models.dora import PaperDoRALinear, inject_paper_dora
from densebench.models.segmenter import build_model, build_on_meta, count_parameters
from densebench.models.strategies import apply_encoder_strategy
from densebench.spec import build_run_spec

# protocol.md §2.2: LoRA trainable = 6 r D per block (r = 16)
LORA_M = {"uni_v1": 2.36, "kaiko-vitl14": 2.36, "uni_v2": 3.54, "virchow_v1": 3.93,
          "virchow_v2": 3.93, "gigapath": 5.90, "hoptimus_0": 5.90, "hoptimus_1": 5.90,
          "lunit_vits8": 0.44}  # fmt: skip
# protocol.md §2.1 / §2.2 per embed dim D, C = 2 classes
DECODER_M = {384: 4.11, 768: 5.88, 1024: 7.06, 1280: 8.24, 1536: 9.42}
SKIP_DECODER_M = {384: 5.62, 768: 7.39, 1024: 8.57, 1280: 9.75, 1536: 10.93}
TRANSFORMER_ADAPTER_M = {384: 3.55, 768: 14.18, 1024: 25.20, 1280: 39.36, 1536: 56.67}
CNN_ADAPTER_M = 11.89


@pytest.fixture(scope="module")
def paper_config():
    """The paper grid's config."""
    return load_config(ROOT / "config/config.yaml")


def trainable_m(config, registries, model: str, strategy: str, **fixes) -> float:
    """Trainable parameters (millions) of a cell on GlaS (2 classes), built on meta."""
    config = copy.deepcopy(config)
    config["fixes"].update(fixes)
    spec = build_run_spec(config, "GlaS", model, strategy, registries)
    return count_parameters(build_on_meta(spec))["trainable"] / 1e6


@pytest.mark.parametrize("model", sorted(LORA_M))
def test_lora_and_dora_parameters_match_the_paper(paper_config, registries, model):
    dim = registries.models[model]["embed_dim"]
    frozen = trainable_m(paper_config, registries, model, "frozen")
    lora = trainable_m(paper_config, registries, model, "lora") - frozen
    assert lora == pytest.approx(LORA_M[model], abs=0.006)
    dora = trainable_m(paper_config, registries, model, "dora") - frozen
    blocks = {"lunit_vits8": 12, "uni_v2": 24, "virchow_v1": 32, "virchow_v2": 32}
    depth = blocks.get(model, 40 if dim == 1536 else 24)
    assert (dora - lora) * 1e6 == pytest.approx(2 * depth, abs=1.5)  # + one scalar per linear


@pytest.mark.parametrize("model", ["lunit_vits8", "uni_v1", "virchow_v2", "uni_v2"])
def test_decoder_and_adapter_sizes_per_embed_dim(paper_config, registries, model):
    dim = registries.models[model]["embed_dim"]
    frozen = trainable_m(paper_config, registries, model, "frozen")
    assert frozen == pytest.approx(DECODER_M[dim], abs=0.006)
    adapter = trainable_m(paper_config, registries, model, "transformer_adapter") - frozen
    assert adapter == pytest.approx(TRANSFORMER_ADAPTER_M[dim], abs=0.006)
    cnn = trainable_m(paper_config, registries, model, "cnn_adapter")
    assert cnn == pytest.approx(SKIP_DECODER_M[dim] + CNN_ADAPTER_M, abs=0.01)


def test_full_fine_tuning_trains_everything(paper_config, registries):
    spec = build_run_spec(paper_config, "GlaS", "lunit_vits8", "full", registries)
    counts = count_parameters(build_on_meta(spec))
    assert counts["trainable"] == counts["total"]


def test_paper_dora_starts_as_the_frozen_linear():
    base = nn.Linear(12, 18)
    dora = PaperDoRALinear(copy.deepcopy(base), rank=4, scale=1.0)
    x = torch.randn(3, 12)
    assert torch.allclose(dora(x), base(x), atol=1e-6)
    assert not any(p.requires_grad for p in dora.base.parameters())


def test_paper_dora_formula_and_gradients():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    dora = PaperDoRALinear(base, rank=2, scale=0.5)
    with torch.no_grad():
        dora.lora_B.normal_()
        dora.lora_magnitude.fill_(1.3)
    w0 = base.weight.detach()
    updated = w0 + 0.5 * (dora.lora_A @ dora.lora_B).T
    expected = 1.3 * torch.linalg.norm(w0) * updated / torch.linalg.norm(updated)
    x = torch.randn(4, 6)
    assert torch.allclose(dora(x), x @ expected.T + base.bias, atol=1e-6)
    dora(x).sum().backward()
    assert all(p.grad is not None for p in (dora.lora_A, dora.lora_B, dora.lora_magnitude))
    assert dora.lora_magnitude.grad.shape == ()  # one scalar, not a vector


def test_paper_dora_replaces_only_the_targets():
    encoder = nn.Sequential()
    encoder.add_module("attn", nn.Module())
    encoder.attn.qkv, encoder.attn.proj, encoder.mlp = (
        nn.Linear(4, 12),
        nn.Linear(4, 4),
        nn.Linear(4, 4),
    )
    names = inject_paper_dora(encoder, r"attn\.(qkv|proj)", rank=2, scale=1.0)
    assert names == ["attn.qkv", "attn.proj"]
    assert isinstance(encoder.attn.qkv, PaperDoRALinear) and isinstance(encoder.mlp, nn.Linear)


def test_peft_dora_fix_uses_a_magnitude_vector(demo_config, registries):
    config = copy.deepcopy(demo_config)
    config["fixes"]["peft_dora"] = True
    spec = build_run_spec(config, "demo_nuclei", "demo_vit_p16", "dora", registries)
    names = [n for n, _ in build_model(spec).backbone.named_parameters() if "magnitude" in n]
    assert names and all("lora_magnitude_vector" in n for n in names)


@pytest.mark.parametrize("family", ["transformers", "musk"])
def test_paper_lora_quirk_and_its_fix(demo_config, registries, family):
    spec = build_run_spec(demo_config, "demo_nuclei", "demo_vit_p16", "lora", registries)
    record = dict(spec.model_record, family=family)
    frozen = replace(spec, strategy_record=registries.strategies["frozen"])
    encoder = build_model(frozen).backbone.encoder  # a plain timm encoder to adapt
    fresh = copy.deepcopy(encoder)
    for p in fresh.parameters():
        p.requires_grad_(True)
    quirk = apply_encoder_strategy(fresh, spec.strategy_record, record, spec.fixes)
    assert quirk == [] and not any(p.requires_grad for p in fresh.parameters())
    fixed = dict(spec.fixes, lora_all_families=True)
    adapted = apply_encoder_strategy(encoder, spec.strategy_record, record, fixed)
    assert len(adapted) == 2 * len(encoder.blocks)


@pytest.mark.parametrize("strategy", ["lora", "dora"])
def test_paper_gives_pathorchestra_no_adapter(paper_config, registries, strategy):
    # [F] models/lora.py and models/dora.py: PathOrchestra is not in the whitelist
    def adapted(**fixes) -> int:
        config = copy.deepcopy(paper_config)
        config["fixes"].update(fixes)
        spec = build_run_spec(config, "GlaS", "PathOrchestra", strategy, registries)
        return len(build_on_meta(spec).adapted_modules)

    assert adapted() == 0
    assert adapted(lora_all_families=True) == 48  # 24 blocks x (qkv, proj)


def test_paper_whitelist_is_by_name_for_the_authors_models(registries):
    timm = registries.models["uni_v1"]
    assert paper_adapts(timm, "uni_v1") and paper_adapts(timm, "demo_vit_p16")
    assert paper_adapts(timm) and not paper_adapts(timm, "PathOrchestra")
    assert not paper_adapts(registries.models["phikon"], "phikon")  # whitelisted, no timm attn
    assert paper_adapts(registries.models["conch_v1_5"], "conch_v1_5")


TOY_RECORD = {"family": "timm", "adapter_targets": r"attn\.(qkv|proj)"}
"""A model record whose targets are the toy block's linears."""


def toy_encoder(dim: int = 1024) -> nn.Module:
    """One attention block of width `dim` with a fused qkv and an output projection."""
    encoder = nn.Module()
    encoder.attn = nn.Module()
    encoder.attn.qkv, encoder.attn.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
    return encoder


def adapt_toy(strategy: str, standard: bool, seed: int = 0, dim: int = 1024) -> nn.Module:
    """A toy block adapted at r = 16, alpha 1 (peft LoRA or the authors' DoRA), seeded."""
    fixes = {"lora_all_families": False, "peft_dora": False, "standard_lora_init": standard}
    torch.manual_seed(seed)
    encoder = toy_encoder(dim)
    record = {"encoder": strategy, "rank": 16, "alpha": 1.0}
    apply_encoder_strategy(encoder, record, TOY_RECORD, fixes)
    return encoder


def lora_a(encoder: nn.Module) -> list[torch.Tensor]:
    """The A factors of an adapted encoder."""
    return [p.detach() for n, p in encoder.named_parameters() if "lora_A" in n]


@pytest.mark.parametrize("strategy", ["lora", "dora"])
@pytest.mark.parametrize(("standard", "bound"), [(False, 1 / 4), (True, 1 / math.sqrt(1024))])
def test_lora_a_initialisation_bound(strategy, standard, bound):
    # paper: [F] LoRALinear/DoraLinear.reset_parameters, kaiming_uniform_(a=sqrt(5)) on the
    # (in, r) lora_a: fan_in = r = 16, bound 0.25; the fix: fan_in = in = 1024, bound 0.031
    factors = lora_a(adapt_toy(strategy, standard))
    assert len(factors) == 2
    for factor in factors:
        assert factor.numel() == 16 * 1024
        assert 0.99 * bound < factor.abs().max() <= bound
        assert factor.abs().mean() == pytest.approx(bound / 2, rel=0.03)  # uniform on +-bound


@pytest.mark.parametrize("strategy", ["lora", "dora"])
def test_lora_a_initialisation_is_seeded(strategy):
    first, again = lora_a(adapt_toy(strategy, False)), lora_a(adapt_toy(strategy, False))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], lora_a(adapt_toy(strategy, False, seed=1))[0])


@pytest.mark.parametrize("strategy", ["lora", "dora"])
def test_paper_lora_init_starts_as_the_frozen_encoder(strategy):
    torch.manual_seed(0)
    reference = toy_encoder(dim=32)  # the same weights adapt_toy draws first
    adapted = adapt_toy(strategy, False, dim=32)
    x = torch.randn(3, 32)
    assert torch.allclose(adapted.attn.qkv(x), reference.attn.qkv(x), atol=1e-6)
