"""MUSK backbone (families/musk.py): layout, size, checkpoint keys, strict loading, forward.

The full 24-layer model is only built on the meta device; real tensors are used at depth 2.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from densebench.models.backbone import build_backbone, check_layout
from densebench.models.families import musk
from tests.conftest import FIXTURES

KEY_FILE = FIXTURES / "checkpoint_keys/musk.txt"
D, FFN, LAYERS, VOCAB, TEXT_POSITIONS = 1024, 4096, 24, 64010, 1024
"""musk_large_patch16_384 (torchscale BEiT-3 large): width, FFN width, depth, text vocabulary."""
POSITIONS = (384 // 16) ** 2 + 3  # fairseq's 2 padding rows + cls + the 24 x 24 patch grid
EXPERT = 4 * (D * D + D) + (FFN * D + FFN) + (D * FFN + D) + 3 * 2 * D + 2 * FFN
"""One modality expert of one layer: q/k/v/out projections, fc1, fc2, the attention, inner
attention and final LayerNorms, the FFN LayerNorm (hand count: 12,606,464)."""
PATCH_CONV = D * 3 * 16 * 16 + D
VISION_PARAMS = LAYERS * EXPERT + PATCH_CONV + D + POSITIONS * D + 2 * D
"""Vision path: the A experts, patch conv, cls token, image positions, final norm A."""
TOTAL_PARAMS = (
    LAYERS * 2 * EXPERT + PATCH_CONV + 2 * D + (POSITIONS + TEXT_POSITIONS) * D
    + VOCAB * D + 2 * 2 * D + 2 * D * D + 1
)  # fmt: skip
"""Both experts, cls/mask tokens, both position tables, text embedding, final norms A/B, the
language and vision heads (no bias) and logit_scale."""


def checkpoint_keys(depth: int | None = None) -> list[str]:
    """Real checkpoint key names; with depth, only those of the first `depth` layers."""
    keys = [line.strip() for line in KEY_FILE.read_text().splitlines()]
    keys = [key for key in keys if key and not key.startswith("#")]
    if depth is None:
        return keys
    layer = re.compile(r"\.layers\.(\d+)\.")
    return [k for k in keys if not (m := layer.search(k)) or int(m.group(1)) < depth]


def reduced_record(record: dict, **kwargs) -> dict:
    """A copy of the registry record with some kwargs overridden (embed_dim kept in step)."""
    out = copy.deepcopy(record)
    out["kwargs"].update(kwargs)
    out["embed_dim"] = out["kwargs"]["embed_dim"]
    return out


def expected_shape(key: str, cfg: musk.MuskConfig) -> tuple[int, ...]:
    """Shape of a checkpoint tensor from its name, per the torchscale source (independent spec)."""
    dim, ffn = cfg.embed_dim, cfg.ffn_dim
    fixed = {
        "logit_scale": (),
        "beit3.text_embed.weight": (cfg.vocab_size, dim),
        "beit3.vision_embed.mask_token": (1, 1, dim),
        "beit3.vision_embed.cls_token": (1, 1, dim),
        "beit3.vision_embed.proj.weight": (dim, cfg.in_chans, cfg.patch_size, cfg.patch_size),
        "beit3.vision_embed.proj.bias": (dim,),
        "beit3.encoder.embed_positions.A.weight": ((cfg.img_size // cfg.patch_size) ** 2 + 3, dim),
        "beit3.encoder.embed_positions.B.weight": (cfg.max_text_positions, dim),
        "language_head.weight": (dim, dim),
        "vision_head.weight": (dim, dim),
    }
    if key in fixed:
        return fixed[key]
    if re.search(r"_proj\.[AB]\.weight$", key):
        return (dim, dim)
    if ".fc1.weight" in key:
        return (ffn, dim)
    if ".fc1.bias" in key or ".ffn_layernorm." in key:
        return (ffn,)
    if ".fc2.weight" in key:
        return (dim, ffn)
    return (dim,)  # projection biases and every other LayerNorm


def write_snapshot(folder: Path, keys: list[str], cfg: musk.MuskConfig) -> dict[str, torch.Tensor]:
    """Seeded synthetic fp16 tensors under the real key names, saved as model.safetensors."""
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(expected_shape(k, cfg), generator=gen).half() for k in keys}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    return state


TINY = {"img_size": 32, "embed_dim": 32, "num_heads": 2, "ffn_dim": 64, "depth": 2}
TINY.update(vocab_size=10, max_text_positions=8)


@pytest.fixture(scope="module")
def record(registries) -> dict:
    """The shipped musk registry record."""
    return copy.deepcopy(registries.models["musk"])


@pytest.fixture(scope="module")
def meta_encoder(record) -> musk.MuskEncoder:
    """The full model from the record, on the meta device."""
    return musk.make_encoder(musk.config_from_record("musk", record), "meta")


def test_meta_build_has_the_registry_layout(record, meta_encoder):
    backbone = musk.MuskBackbone(meta_encoder)
    assert (backbone.embed_dim, backbone.num_prefix_tokens, backbone.patch_size) == (1024, 1, 16)
    check_layout("musk", record, backbone)
    assert meta_encoder.cfg == musk.MuskConfig()  # record kwargs = the musk_large_patch16_384 ones
    assert len(meta_encoder.beit3.encoder.layers) == 24


def test_parameter_count(record, meta_encoder):
    named = dict(meta_encoder.named_parameters())
    total = sum(p.numel() for p in named.values())
    vision = sum(p.numel() for k, p in named.items() if musk.key_role(k) == "vision")
    assert total == TOTAL_PARAMS
    assert vision == VISION_PARAMS
    assert abs(total / 1e6 - record["params_m"]) < 0.5


@pytest.mark.parametrize(("size", "tokens"), [(384, 577), (224, 197), (448, 785)])
def test_token_grid(meta_encoder, size, tokens):
    backbone = musk.MuskBackbone(meta_encoder)
    image = torch.empty(2, 3, size, size, device="meta")
    assert backbone.all_tokens(image).shape == (2, tokens, 1024)
    assert backbone(image).shape == (2, tokens - 1, 1024)


def test_module_mirrors_the_checkpoint_keys(meta_encoder):
    keys = checkpoint_keys()
    state = meta_encoder.state_dict()
    assert list(state) == keys
    for key in keys:  # each key has exactly one role in the table
        assert sum(bool(re.fullmatch(p, key)) for p, _ in musk.CHECKPOINT_KEY_TABLE) == 1, key
    cfg = meta_encoder.cfg
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: expected_shape(k, cfg) for k in keys
    }


def test_round_trip_through_build_backbone(tmp_path, record):
    rec = reduced_record(record, depth=2, vocab_size=1000)
    cfg = musk.config_from_record("musk", rec)
    state = write_snapshot(tmp_path / "musk", checkpoint_keys(depth=2), cfg)
    backbone = build_backbone("musk", rec, tmp_path / "musk")
    loaded = backbone.encoder.state_dict()
    assert list(loaded) == list(state)
    for key, tensor in state.items():
        assert loaded[key].device.type == "cpu" and loaded[key].dtype == torch.float32, key
        assert torch.equal(loaded[key], tensor.float()), key


def test_missing_key_raises_naming_the_model(tmp_path, record):
    rec = reduced_record(record, **TINY)
    keys = [k for k in checkpoint_keys(depth=2) if k != "beit3.encoder.layers.1.ffn.A.fc2.weight"]
    write_snapshot(tmp_path, keys, musk.config_from_record("musk", rec))
    with pytest.raises(ValueError, match=r"model musk: .*missing 1 keys .*ffn\.A\.fc2\.weight"):
        build_backbone("musk", rec, tmp_path)


def test_unexpected_key_raises_naming_the_model(tmp_path, record):
    rec = reduced_record(record, **TINY)
    keys = checkpoint_keys(depth=3)  # layer 2 does not exist at depth 2
    write_snapshot(tmp_path, keys, musk.config_from_record("musk", rec))
    with pytest.raises(ValueError, match=r"model musk: .*unexpected .*layers\.2\."):
        build_backbone("musk", rec, tmp_path)


def test_checkpoint_position_grid_is_resized_on_load(tmp_path, record):
    rec = reduced_record(record, **TINY)  # native grid 2x2
    cfg = musk.config_from_record("musk", rec)
    state = {k: torch.randn(expected_shape(k, cfg)) for k in checkpoint_keys(depth=2)}
    key = "beit3.encoder.embed_positions.A.weight"
    state[key] = torch.randn(3 + 16, cfg.embed_dim)  # a 4x4 grid checkpoint
    encoder = musk.make_encoder(cfg, "meta")
    musk.load_checkpoint("musk", encoder, dict(state))
    table = encoder.state_dict()[key]
    assert table.shape == (3 + 4, cfg.embed_dim)
    assert torch.equal(table[:3], state[key][:3])
    grid = state[key][3:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(2, 2), mode="bicubic", align_corners=False)
    assert torch.allclose(table[3:], resized.permute(0, 2, 3, 1).reshape(4, -1))


def test_adapter_targets_are_the_vision_attention_linears(record, meta_encoder):
    pattern = re.compile(record["adapter_targets"])
    modules = dict(meta_encoder.named_modules())
    matched = [name for name in modules if pattern.fullmatch(name)]
    assert all(isinstance(modules[name], torch.nn.Linear) for name in matched)
    assert sorted(matched) == sorted(
        f"beit3.encoder.layers.{i}.self_attn.{proj}_proj.A"
        for i in range(24)
        for proj in ("q", "k", "v", "out")
    )


def test_peft_accepts_the_adapter_targets(record):
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer

    encoder = musk.make_encoder(musk.config_from_record("musk", reduced_record(record, **TINY)))
    config = LoraConfig(r=4, lora_alpha=4, target_modules=record["adapter_targets"])
    inject_adapter_in_model(config, encoder)
    adapted = [n for n, m in encoder.named_modules() if isinstance(m, LoraLayer)]
    assert len(adapted) == 4 * 2
    assert encoder(torch.randn(1, 3, 32, 32)).shape == (1, 5, 32)


def reference_tokens(sd: dict[str, torch.Tensor], cfg: musk.MuskConfig, x: torch.Tensor):
    """Functional re-statement of torchscale's BEiT-3 image path (q pre-scaled, bmm, softmax)."""
    dim, heads, eps = cfg.embed_dim, cfg.num_heads, cfg.layernorm_eps

    def ln(t, name):
        return F.layer_norm(t, (t.shape[-1],), sd[f"{name}.weight"], sd[f"{name}.bias"], eps)

    def lin(t, name):
        return F.linear(t, sd[f"{name}.weight"], sd[f"{name}.bias"])

    emb = "beit3.vision_embed"
    t = F.conv2d(x, sd[f"{emb}.proj.weight"], sd[f"{emb}.proj.bias"], stride=cfg.patch_size)
    t = torch.cat([sd[f"{emb}.cls_token"].expand(len(x), -1, -1), t.flatten(2).transpose(1, 2)], 1)
    batch, length, _ = t.shape
    t = t + sd["beit3.encoder.embed_positions.A.weight"][2 : 2 + length]
    for i in range(cfg.depth):
        p = f"beit3.encoder.layers.{i}."
        h = ln(t, p + "self_attn_layer_norm.A")
        q, k, v = (lin(h, f"{p}self_attn.{n}_proj.A") for n in "qkv")
        q = q * (dim // heads) ** -0.5
        q, k, v = (
            z.view(batch, length, heads, -1).transpose(1, 2).reshape(batch * heads, length, -1)
            for z in (q, k, v)
        )
        w = torch.softmax(torch.bmm(q, k.transpose(1, 2)).float(), dim=-1)
        a = (
            torch.bmm(w, v)
            .view(batch, heads, length, -1)
            .transpose(1, 2)
            .reshape(batch, length, dim)
        )
        t = t + lin(ln(a, p + "self_attn.inner_attn_ln.A"), p + "self_attn.out_proj.A")
        h = F.gelu(lin(ln(t, p + "final_layer_norm.A"), p + "ffn.A.fc1"))
        t = t + lin(ln(h, p + "ffn.A.ffn_layernorm"), p + "ffn.A.fc2")
    return ln(t, "beit3.encoder.layer_norm.A")


@pytest.fixture(scope="module")
def small_real(record) -> tuple[musk.MuskEncoder, musk.MuskConfig]:
    """A real depth-2 encoder at full width (native input 64), random non-trivial weights."""
    rec = reduced_record(record, depth=2, img_size=64, vocab_size=16, max_text_positions=8)
    cfg = musk.config_from_record("musk", rec)
    encoder = musk.make_encoder(cfg, "meta").to_empty(device="cpu")
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for name, param in encoder.named_parameters():
            scale = 0.05 * torch.randn(param.shape, generator=gen)
            param.copy_(1 + scale if re.search(r"(norm|_ln)\.[AB]?\.?weight$", name) else scale)
    return encoder.eval(), cfg


def test_reduced_forward_shape_and_reference(small_real):
    encoder, cfg = small_real
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        tokens = musk.MuskBackbone(encoder).all_tokens(image)
        expected = reference_tokens(encoder.state_dict(), cfg, image)
    assert tokens.shape == (2, 1 + 16, 1024)
    assert torch.allclose(tokens, expected, atol=1e-4, rtol=1e-4)


def test_only_the_vision_experts_and_used_positions_matter(small_real):
    encoder, _ = small_real
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    work = copy.deepcopy(encoder)
    with torch.no_grad():
        before = work.forward_features(image)
        for name, param in work.named_parameters():
            if musk.key_role(name) != "vision":
                param.add_(1.0)
        work.beit3.encoder.embed_positions.A.weight[:2].add_(1.0)  # fairseq rows 0-1: unused
        assert torch.equal(work.forward_features(image), before)
        work.beit3.encoder.layers[1].self_attn.v_proj.A.weight.add_(0.1)
        assert not torch.allclose(work.forward_features(image), before)


def test_other_sizes_interpolate_positions(small_real):
    encoder, _ = small_real
    with torch.no_grad():
        tokens = encoder.forward_features(torch.randn(1, 3, 96, 96))
    assert tokens.shape == (1, 1 + 36, 1024) and torch.isfinite(tokens).all()
    with pytest.raises(ValueError, match="multiple of patch"):
        encoder.forward_features(torch.randn(1, 3, 72, 72))


def test_wrong_arch_or_kwarg_is_rejected(record):
    with pytest.raises(ValueError, match="model musk: family musk builds only"):
        musk.config_from_record("musk", {**record, "arch": "beit3_base"})
    with pytest.raises(ValueError, match=r"unknown musk kwargs \['mlp_ratio'\]"):
        musk.config_from_record("musk", reduced_record(record, mlp_ratio=4))
