"""transformers backbones (Phikon, Phikon-v2, Midnight-12k, Hibou-L) built from registry records.

Full-size encoders are built on the meta device (shapes and parameter counts, no memory); loading
is tested with synthetic snapshots written under the real checkpoint key names
(tests/fixtures/checkpoint_keys/<model>.txt) at reduced depth. No network: HF_HUB_OFFLINE=1 and
local_files_only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from safetensors.torch import save_file

from densebench.models.backbone import build_backbone
from tests.models.backbone_helpers import (
    keys_of_first_blocks,
    meta_backbone,
    read_keys,
    record_for,
)

MODELS = ("phikon", "phikon_v2", "midnight12k", "hibou_l")

PAPER_PARAMS_M = {"phikon": 85.8, "phikon_v2": 303.0, "midnight12k": 1135.0, "hibou_l": 303.0}
"""Encoder sizes in protocol.md section 1 (params column, own count)."""

DEPTH = 2
"""Reduced depth of the real-tensor tests."""

HUB_RENAMES = (
    (r"^encoder\.layer\.(\d+)\.", r"layers.\1.", "ViTModel"),
    (r"attention\.attention\.(query|key|value)\.", None, None),
    (r"attention\.output\.dense\.", "attention.o_proj.", None),
    (r"intermediate\.dense\.", "mlp.fc1.", "ViTModel"),
    (r"(layers\.\d+)\.output\.dense\.", r"\1.mlp.fc2.", "ViTModel"),
    (r"mlp\.weights_out\.", "mlp.down_proj.", None),
)
"""Hub checkpoint name -> transformers 5 module name (test-side, independent of the library)."""

QKV = {"query": "q_proj", "key": "k_proj", "value": "v_proj"}


def hub_to_module(key: str, arch: str) -> str:
    """The transformers 5 parameter name that a hub checkpoint key loads into."""
    for pattern, replacement, only in HUB_RENAMES:
        if only and only != arch:
            continue
        if replacement is None:
            key = re.sub(pattern, lambda m: f"attention.{QKV[m.group(1)]}.", key)
        else:
            key = re.sub(pattern, replacement, key)
    return key


def first_blocks(keys: list[str], depth: int = DEPTH) -> list[str]:
    """Keys of the embeddings, the final norm and the first `depth` blocks."""
    return keys_of_first_blocks(keys, r"encoder\.layer\.(\d+)\.", depth)


def hub_config(record: dict, **overrides) -> dict:
    """A config.json like the hub's for this record (Hibou's as its remote code writes it)."""
    arch = record["arch"]
    skip = ("add_pooling_layer", "interpolate_pos_encoding")
    config = {k: v for k, v in record["kwargs"].items() if k not in skip}
    config.update(overrides)
    if arch == "ViTModel":
        config.update(model_type="vit", architectures=["ViTModel"])
    elif arch == "Dinov2Model":
        config.update(model_type="dinov2", architectures=["Dinov2Model"])
    else:  # Hibou-L: remote-code config of type dinov2, read by Dinov2WithRegistersConfig
        config.update(
            model_type="dinov2",
            architectures=["Dinov2Model"],
            auto_map={
                "AutoConfig": "configuration_dinov2.Dinov2Config",
                "AutoModel": "modeling_dinov2.Dinov2Model",
            },
        )
    return config


def synthetic_state(name: str, record: dict, shapes: dict, seed: int = 0) -> dict:
    """Small random tensors under the real key names (first DEPTH blocks), shaped like `shapes`."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key in first_blocks(read_keys(name)):
        target = hub_to_module(key, record["arch"])
        if "mlp.weights_in." in target:
            gate = shapes[target.replace("weights_in", "gate_proj")]
            shape = (2 * gate[0], *gate[1:])
        elif target not in shapes and "pooler." in target:
            shape = (record["embed_dim"], record["embed_dim"])[: 1 if key.endswith("bias") else 2]
        else:
            shape = shapes[target]
        state[key] = 0.02 * torch.randn(shape, generator=gen)
    return state


def expected_parameters(state: dict, arch: str) -> dict:
    """Each encoder parameter the synthetic checkpoint should produce."""
    expected = {}
    for key, value in state.items():
        target = hub_to_module(key, arch)
        if "pooler." in target:
            continue  # Phikon's pooler is not built (add_pooling_layer=False)
        if "mlp.weights_in." in target:
            gate, up = value.chunk(2, dim=0)
            expected[target.replace("weights_in", "gate_proj")] = gate
            expected[target.replace("weights_in", "up_proj")] = up
        else:
            expected[target] = value
    return expected


def write_snapshot(folder: Path, state: dict, config: dict) -> Path:
    """A snapshot folder in the hub's format: model.safetensors + config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def reduced_snapshot(registries, name: str, folder: Path, **kwargs) -> tuple[dict, dict]:
    """Write a DEPTH-block snapshot (kwargs override the width); return (record, state)."""
    record = record_for(registries, name, random=False, num_hidden_layers=DEPTH, **kwargs)
    record["embed_dim"] = record["kwargs"]["hidden_size"]
    with torch.device("meta"):
        shapes_from = build_backbone(name, dict(record, weights="random")).encoder
    shapes = {k: tuple(v.shape) for k, v in shapes_from.state_dict().items()}
    state = synthetic_state(name, record, shapes)
    write_snapshot(folder, state, hub_config(record, num_hidden_layers=DEPTH, **kwargs))
    return record, state


@pytest.mark.parametrize("name", MODELS)
def test_layout_and_parameter_count(registries, name):
    record = registries.models[name]
    backbone = meta_backbone(registries, name)
    assert backbone.embed_dim == record["embed_dim"]
    assert backbone.num_prefix_tokens == record["num_prefix_tokens"]
    assert backbone.patch_size == record["patch_size"]
    params = sum(p.numel() for p in backbone.parameters()) / 1e6
    assert params == pytest.approx(PAPER_PARAMS_M[name], rel=0.02)


@pytest.mark.parametrize("name", MODELS)
def test_token_grid_at_paper_sizes(registries, name):
    backbone = meta_backbone(registries, name)
    patch, prefix = backbone.patch_size, backbone.num_prefix_tokens
    for side in (224, 448, 992 if patch == 16 else 994):
        tokens = backbone.all_tokens(torch.empty(1, 3, side, side, device="meta"))
        assert tokens.shape == (1, prefix + (side // patch) ** 2, backbone.embed_dim)


@pytest.mark.parametrize("name", MODELS)
def test_adapter_targets_are_attention_projections(registries, name):
    backbone = meta_backbone(registries, name)
    pattern = registries.models[name]["adapter_targets"]
    hits = {n: m for n, m in backbone.encoder.named_modules() if re.fullmatch(pattern, n)}
    depth = registries.models[name]["kwargs"]["num_hidden_layers"]
    assert len(hits) == depth * 4  # q, k, v and output projection per block
    assert all(isinstance(m, torch.nn.Linear) for m in hits.values())
    assert {n.rsplit(".", 1)[1] for n in hits} == {"q_proj", "k_proj", "v_proj", "o_proj"}


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip_with_real_key_names(registries, tmp_path, name):
    record, state = reduced_snapshot(registries, name, tmp_path / name)
    backbone = build_backbone(name, record, tmp_path / name)
    loaded = backbone.encoder.state_dict()
    expected = expected_parameters(state, record["arch"])
    assert set(loaded) == set(expected)
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize("name", MODELS)
def test_missing_or_unexpected_keys_raise(registries, tmp_path, name):
    narrow = {"hidden_size": 32, "num_attention_heads": 2}
    record, state = reduced_snapshot(registries, name, tmp_path / "ok", **narrow)
    config = hub_config(record, num_hidden_layers=DEPTH, **narrow)
    missing = {k: v for k, v in state.items() if "layer.1.attention.attention.query.w" not in k}
    assert len(missing) == len(state) - 1
    write_snapshot(tmp_path / "missing", missing, config)
    with pytest.raises(ValueError, match=rf"model {name}: .*missing keys \[.*1\.attention\.q_proj"):
        build_backbone(name, record, tmp_path / "missing")
    extra = dict(state, **{"encoder.layer.0.attention.extra.weight": torch.zeros(3)})
    write_snapshot(tmp_path / "extra", extra, config)
    with pytest.raises(ValueError, match=rf"model {name}: .*unexpected keys \[.*extra\.weight"):
        build_backbone(name, record, tmp_path / "extra")


def test_pretrained_needs_a_local_snapshot(registries, tmp_path):
    record = record_for(registries, "phikon", random=False)
    with pytest.raises(FileNotFoundError, match="resources/weights/phikon"):
        build_backbone("phikon", record, tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_forward_on_a_tiny_real_input(registries, name):
    record = record_for(registries, name, num_hidden_layers=DEPTH)
    backbone = build_backbone(name, record).eval()
    side = 3 * backbone.patch_size  # not the native grid: position embeddings are interpolated
    with torch.no_grad():
        tokens = backbone.all_tokens(torch.randn(2, 3, side, side))
        patches = backbone(torch.randn(2, 3, side, side))
    assert tokens.shape == (2, record["num_prefix_tokens"] + 9, record["embed_dim"])
    assert patches.shape == (2, 9, record["embed_dim"])
    assert torch.isfinite(tokens).all()


def test_only_the_unused_mask_token_may_be_missing(registries, tmp_path):
    narrow = {"hidden_size": 32, "num_attention_heads": 2}
    record, state = reduced_snapshot(registries, "hibou_l", tmp_path / "ok", **narrow)
    state.pop("embeddings.mask_token")
    write_snapshot(
        tmp_path / "no_mask", state, hub_config(record, num_hidden_layers=DEPTH, **narrow)
    )
    encoder = build_backbone("hibou_l", record, tmp_path / "no_mask").encoder
    assert torch.equal(encoder.embeddings.register_tokens, state["embeddings.register_tokens"])
