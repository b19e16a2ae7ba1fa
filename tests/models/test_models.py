"""Segmentation models: shapes, strategies, adapter placement and the paper's module sizes."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from densebench.models.adapters import CNNAdapter, TransformerAdapter
from densebench.models.decoder import SkipDecoder, TokenDecoder
from densebench.models.segmenter import (
    build_model,
    count_parameters,
    load_trainable_state,
    tokens_to_grid,
    trainable_state,
)
from densebench.models.strategies import check_adapted
from densebench.spec import build_run_spec

DEMO_MODELS = ["demo_vit_p8", "demo_vit_p14_reg4", "demo_vit_p16"]
STRATEGIES = ["frozen", "lora", "dora", "cnn_adapter", "transformer_adapter", "full"]


def millions(module: torch.nn.Module) -> float:
    """Parameters in millions."""
    return sum(p.numel() for p in module.parameters()) / 1e6


def spec_for(config, registries, model, strategy, dataset="demo_nuclei"):
    """Run spec of a demo cell."""
    return build_run_spec(config, dataset, model, strategy, registries)


@pytest.mark.parametrize("model", DEMO_MODELS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_logits_have_the_input_resolution(demo_config, registries, model, strategy):
    spec = spec_for(demo_config, registries, model, strategy)
    net = build_model(spec)
    size = spec.input_size
    logits = net(torch.randn(2, 3, size, size))
    assert logits.shape == (2, spec.num_classes, size, size)
    logits.mean().backward()
    encoder_grads = [p.grad for p in net.backbone.parameters() if p.grad is not None]
    assert bool(encoder_grads) == (strategy in ("lora", "dora", "full"))


@pytest.mark.parametrize("strategy", ["lora", "dora"])
def test_lora_targets_attention_qkv_and_proj_only(demo_config, registries, strategy):
    spec = spec_for(demo_config, registries, "demo_vit_p16", strategy)
    net = build_model(spec)
    depth = len(net.backbone.encoder.blocks)
    assert sorted(net.adapted_modules) == sorted(
        f"blocks.{i}.attn.{name}" for i in range(depth) for name in ("qkv", "proj")
    )
    assert not any("patch_embed" in n for n in net.adapted_modules)
    rank, dim = spec.strategy_record["rank"], spec.model_record["embed_dim"]
    lora = sum(
        p.numel() for n, p in net.backbone.named_parameters() if "lora_A" in n or "lora_B" in n
    )
    assert lora == 6 * rank * dim * depth  # protocol.md §2.2: 6 r D per block


def test_lora_scale_is_alpha(demo_config, registries):
    net = build_model(spec_for(demo_config, registries, "demo_vit_p8", "lora"))
    qkv = net.backbone.encoder.blocks[0].attn.qkv
    assert qkv.scaling["default"] == pytest.approx(1.0)  # the paper's alpha = 1.0


def test_adapter_check_rejects_the_patch_embedding():
    with pytest.raises(ValueError, match="outside"):
        check_adapted(["blocks.0.attn.qkv", "patch_embed.proj"], r".*proj|.*qkv")
    with pytest.raises(ValueError, match="matched no module"):
        check_adapted([], r"blocks\.\d+\.attn\.qkv")


def test_paper_module_sizes():
    # protocol.md §2.1/§2.2, D = 1024, C = 2
    assert millions(TokenDecoder(1024, 2, (2, 2, 2, 2))) == pytest.approx(7.06, abs=0.01)
    assert millions(TokenDecoder(384, 2, (2, 2, 2, 1))) == pytest.approx(4.11, abs=0.01)
    skip = SkipDecoder(1024, 2, CNNAdapter.SKIP_CHANNELS)
    assert millions(skip) == pytest.approx(8.57, abs=0.01)
    cnn = CNNAdapter()
    assert millions(cnn) == pytest.approx(11.89, abs=0.01)
    assert millions(cnn.stage3) == pytest.approx(10.45, abs=0.01)
    assert millions(TransformerAdapter(1024, depth=2)) == pytest.approx(25.20, abs=0.01)


@pytest.mark.parametrize("size", [56, 64, 72])
def test_cnn_adapter_skips_are_padded_to_their_scale(size):
    eighth, quarter, half = CNNAdapter(compute_discarded_stage=False)(torch.randn(1, 3, size, size))
    assert eighth.shape[-1] == size // 8 and quarter.shape[-1] == size // 4
    assert half.shape[-1] == size // 2


def test_trainable_state_round_trip(demo_config, registries):
    spec = spec_for(demo_config, registries, "demo_vit_p14_reg4", "lora")
    net = build_model(spec)
    state = trainable_state(net)
    assert not any(k.startswith("backbone.") and "lora_" not in k for k in state)
    twin = build_model(spec)
    with torch.no_grad():
        next(iter(twin.decoder.parameters())).add_(1.0)
    load_trainable_state(twin, state)
    x = torch.randn(1, 3, spec.input_size, spec.input_size)
    net.eval(), twin.eval()
    assert torch.equal(net(x), twin(x))
    with pytest.raises(ValueError, match="does not fit"):
        load_trainable_state(twin, {"decoder.nonexistent": torch.zeros(1)})


def test_frozen_encoder_mode_follows_the_protocol(demo_config, registries):
    spec = spec_for(demo_config, registries, "demo_vit_p16", "frozen")
    assert build_model(spec).train().backbone.training  # paper: frozen encoder in train mode
    fixed = dict(spec.fixes, frozen_encoder_eval=True)
    corrected = build_model(replace(spec, fixes=fixed)).train()
    assert not corrected.backbone.training and corrected.decoder.training


def test_counts_and_grid_errors(demo_config, registries):
    net = build_model(spec_for(demo_config, registries, "demo_vit_p16", "frozen"))
    counts = count_parameters(net)
    assert counts["trainable"] == sum(p.numel() for p in net.decoder.parameters())
    with pytest.raises(ValueError, match="square"):
        tokens_to_grid(torch.zeros(1, 12, 4))


def test_attention_uses_fused_sdpa(demo_config, registries):
    net = build_model(spec_for(demo_config, registries, "demo_vit_p16", "lora"))
    assert all(block.attn.fused_attn for block in net.backbone.encoder.blocks)
