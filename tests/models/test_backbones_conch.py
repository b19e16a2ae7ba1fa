"""CONCH (v1) and CONCH v1.5 vision trunks built with timm from their registry records.

Full-size trunks are built on the meta device; loading is tested with synthetic checkpoints
written under the real key names (tests/fixtures/checkpoint_keys/conch_v1*.txt, including the other
towers' keys the loader must ignore) at reduced depth, in the real file format (a torch pickle).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed

from densebench.models.backbone import build_backbone
from densebench.models.families.conch import CHECKPOINT_LAYOUTS
from densebench.models.strategies import apply_encoder_strategy
from tests.models.backbone_helpers import (
    keys_of_first_blocks,
    meta_backbone,
    read_keys,
    record_for,
)

MODELS = ("conch_v1", "conch_v1_5")
PAPER_PARAMS_M = {"conch_v1": 85.8, "conch_v1_5": 304.0}
"""Trunk sizes in protocol.md section 1 (params column, own timm count)."""
DEPTH = 2
"""Reduced depth of the real-tensor tests."""


def first_blocks(keys: list[str], depth: int = DEPTH) -> list[str]:
    """Keys outside numbered blocks plus those of the first `depth` blocks of every tower."""
    return keys_of_first_blocks(keys, r"(?:blocks|resblocks|cross_attn)\.(\d+)\.", depth)


def synthetic_checkpoint(registries, name: str, folder: Path, seed: int = 0, **kwargs):
    """Write a DEPTH-block checkpoint under the real names; return (record, state, trunk prefix)."""
    record = record_for(registries, name, random=False, depth=DEPTH, **kwargs)
    record["embed_dim"] = record["kwargs"]["embed_dim"]
    with torch.device("meta"):
        reference = build_backbone(name, dict(record, weights="random")).encoder
    shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    layout = CHECKPOINT_LAYOUTS[record["arch"]]
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key in first_blocks(read_keys(name)):
        trunk_key = key[len(layout.trunk_prefix) :] if key.startswith(layout.trunk_prefix) else None
        shape = shapes[trunk_key] if trunk_key else (4,)  # other towers: never read by the loader
        state[key] = 0.02 * torch.randn(shape, generator=gen)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / layout.files[0])
    return record, state, layout.trunk_prefix


@pytest.mark.parametrize("name", MODELS)
def test_layout_and_parameter_count(registries, name):
    record = registries.models[name]
    backbone = meta_backbone(registries, name)
    assert backbone.embed_dim == record["embed_dim"]
    assert backbone.num_prefix_tokens == record["num_prefix_tokens"]
    assert backbone.patch_size == record["patch_size"]
    params = sum(p.numel() for p in backbone.parameters()) / 1e6
    assert params == pytest.approx(PAPER_PARAMS_M[name], rel=0.02)


def test_conch_v1_5_has_layerscale_and_conch_v1_none(registries):
    v1, v15 = (meta_backbone(registries, n).encoder for n in MODELS)
    assert not any(n.endswith("gamma") for n, _ in v1.named_parameters())
    assert v15.blocks[0].ls1.gamma.shape == (1024,)
    assert v15.patch_embed.grid_size == (28, 28)


@pytest.mark.parametrize("name", MODELS)
def test_token_grid_at_paper_sizes(registries, name):
    backbone = meta_backbone(registries, name)
    for side in (224, 448, 992):
        tokens = backbone.all_tokens(torch.empty(1, 3, side, side, device="meta"))
        assert tokens.shape == (1, 1 + (side // 16) ** 2, backbone.embed_dim)


@pytest.mark.parametrize("name", MODELS)
def test_adapter_targets_are_attention_projections(registries, name):
    backbone = meta_backbone(registries, name)
    pattern = registries.models[name]["adapter_targets"]
    hits = {n: m for n, m in backbone.encoder.named_modules() if re.fullmatch(pattern, n)}
    assert len(hits) == len(backbone.encoder.blocks) * 2  # fused qkv + output projection
    assert all(isinstance(m, torch.nn.Linear) for m in hits.values())
    assert {n.rsplit(".", 1)[1] for n in hits} == {"qkv", "proj"}


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip_with_real_key_names(registries, tmp_path, name):
    record, state, prefix = synthetic_checkpoint(registries, name, tmp_path)
    backbone = build_backbone(name, record, tmp_path)
    loaded = backbone.encoder.state_dict()
    expected = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    assert len(expected) < len(state)  # the other towers' keys were present and dropped
    assert set(loaded) == set(expected)
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize("name", MODELS)
def test_missing_or_unexpected_trunk_keys_raise(registries, tmp_path, name):
    narrow = {"embed_dim": 64, "num_heads": 2}
    record, state, prefix = synthetic_checkpoint(registries, name, tmp_path / "ok", **narrow)
    file = CHECKPOINT_LAYOUTS[record["arch"]].files[0]
    missing = {k: v for k, v in state.items() if k != f"{prefix}blocks.1.attn.qkv.weight"}
    (tmp_path / "missing").mkdir()
    torch.save(missing, tmp_path / "missing" / file)
    with pytest.raises(ValueError, match=rf"model {name}: .*missing keys \['blocks\.1\.attn\.qkv"):
        build_backbone(name, record, tmp_path / "missing")
    for extra, message in ((f"{prefix}blocks.0.extra", "unexpected keys"), ("visual.x", "outside")):
        (tmp_path / "extra").mkdir(exist_ok=True)
        torch.save(dict(state, **{extra: torch.zeros(2)}), tmp_path / "extra" / file)
        with pytest.raises(ValueError, match=rf"model {name}: .*{message}"):
            build_backbone(name, record, tmp_path / "extra")


def test_wrapped_checkpoint_is_unwrapped(registries, tmp_path):
    record, state, _ = synthetic_checkpoint(registries, "conch_v1", tmp_path / "flat")
    (tmp_path / "wrapped").mkdir()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}}
    torch.save(wrapped, tmp_path / "wrapped" / "pytorch_model.bin")
    trunk = build_backbone("conch_v1", record, tmp_path / "wrapped").encoder
    assert torch.equal(trunk.pos_embed, state["visual.trunk.pos_embed"])


def test_pretrained_needs_a_local_checkpoint(registries, tmp_path):
    record = record_for(registries, "conch_v1_5", random=False)
    with pytest.raises(FileNotFoundError, match="resources/weights/conch_v1_5"):
        build_backbone("conch_v1_5", record, tmp_path)


def test_conch_v1_5_resizes_positions_dino_style(registries):
    trunk = build_backbone("conch_v1_5", record_for(registries, "conch_v1_5", depth=1)).encoder
    with torch.no_grad():
        trunk.pos_embed.normal_()
        grid = torch.zeros(1, 20, 20, 1024)  # a 320x320 input
        resized = trunk._pos_embed(grid)[:, 1:]
        patch_pos = trunk.pos_embed[:, 1:].reshape(1, 28, 28, -1).permute(0, 3, 1, 2)
        dino = F.interpolate(patch_pos, scale_factor=20.1 / 28, mode="bicubic")
        timm_default = resample_abs_pos_embed(trunk.pos_embed, (20, 20), num_prefix_tokens=1)
        native = trunk._pos_embed(torch.zeros(1, 28, 28, 1024))
    assert torch.allclose(resized, dino.permute(0, 2, 3, 1).reshape(1, 400, -1))
    assert not torch.allclose(resized, timm_default[:, 1:], atol=1e-3)
    assert torch.equal(native[:, 1:], trunk.pos_embed[:, 1:])


@pytest.mark.parametrize("name", MODELS)
def test_forward_on_a_tiny_real_input(registries, name):
    record = record_for(registries, name, depth=DEPTH)
    backbone = build_backbone(name, record).eval()
    with torch.no_grad():
        tokens = backbone.all_tokens(torch.randn(2, 3, 48, 48))
        patches = backbone(torch.randn(2, 3, 48, 48))
    assert tokens.shape == (2, 1 + 9, record["embed_dim"])
    assert patches.shape == (2, 9, record["embed_dim"])
    assert torch.isfinite(tokens).all()


@pytest.mark.parametrize("name", MODELS)
def test_paper_lora_lands_on_the_trunk(registries, name):
    """Rank-r LoRA on the fused qkv (D -> 3D) and the output projection (D -> D) of each block:
    r (D + 3D) + r (D + D) = 6 r D trainable parameters per block (protocol.md §2.2)."""
    fixes = {"lora_all_families": False, "peft_dora": False}  # the paper's behaviour
    lora, trunk = registries.strategies["lora"], registries.models[name]["kwargs"]
    with torch.device("meta"):
        encoder = build_backbone(name, record_for(registries, name)).encoder
        apply_encoder_strategy(encoder, lora, registries.models[name], fixes)
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    assert trainable == 6 * lora["rank"] * trunk["embed_dim"] * trunk["depth"]
