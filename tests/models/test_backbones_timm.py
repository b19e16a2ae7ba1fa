"""timm-family PFMs: real architectures on the meta device, token grids at the paper's input
sizes, strict loading of a snapshot in timm's own key format."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from densebench.models.backbone import build_backbone

TIMM_PFMS = {  # model: encoder parameters in millions (protocol.md §1, "t" column)
    "PathOrchestra": 303.4, "gigapath": 1135, "hoptimus_0": 1135, "hoptimus_1": 1135,
    "kaiko-vitl14": 304.4, "lunit_vits8": 21.7, "uni_v1": 303.4, "uni_v2": 681.4,
    "virchow_v1": 631.2, "virchow_v2": 631.2,
}  # fmt: skip


def on_meta(registries, model: str):
    """The model's backbone with random weights on the meta device."""
    record = dict(registries.models[model], weights="random")
    with torch.device("meta"):
        return build_backbone(model, record)


@pytest.mark.parametrize("model", sorted(TIMM_PFMS))
def test_architecture_and_token_grid(registries, model):
    backbone = on_meta(registries, model)
    record = registries.models[model]
    params = sum(p.numel() for p in backbone.parameters()) / 1e6
    assert params == pytest.approx(TIMM_PFMS[model], rel=0.005)
    patch, prefix = record["patch_size"], record["num_prefix_tokens"]
    sizes = (224, 448, 994 if patch == 14 else 992)
    for size in sizes:
        tokens = backbone.all_tokens(torch.empty(1, 3, size, size, device="meta"))
        assert tokens.shape == (1, prefix + (size // patch) ** 2, record["embed_dim"])


def test_strict_round_trip_of_a_timm_snapshot(registries, tmp_path):
    record = dict(registries.models["uni_v1"], weights="random")
    record["kwargs"] = dict(record["kwargs"], depth=2)
    donor = build_backbone("uni_v1", record).encoder
    state = {k: torch.randn_like(v) for k, v in donor.state_dict().items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    pretrained = dict(record)
    pretrained.pop("weights")
    loaded = build_backbone("uni_v1", pretrained, tmp_path).encoder.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    del state["blocks.1.attn.qkv.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"(?s)model uni_v1: .*blocks\.1\.attn\.qkv\.weight"):
        build_backbone("uni_v1", pretrained, tmp_path)


def test_missing_snapshot_names_the_fetch_command(registries, tmp_path):
    with pytest.raises(FileNotFoundError, match="resources/weights/uni_v1"):
        build_backbone("uni_v1", registries.models["uni_v1"], tmp_path)
