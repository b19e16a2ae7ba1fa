"""MUSK (BEiT-3 large multiway transformer): our own implementation of its image path.

The authors build MUSK with the `musk` package (timm `musk_large_patch16_384`, a torchscale
BEiT-3 large) and call it with the image only, return_global=False, with_head=False,
out_norm=False, ms_aug=False (protocol.md §1). This module re-implements that call without the
`musk` / `torchscale` packages; it reproduces their module tree, so parameter names equal the
checkpoint's keys (`beit3.encoder.layers.3.self_attn.q_proj.A.weight`, ...).

Faithful (read in lilab-stanford/MUSK and microsoft/torchscale sources):
- vision embedding: 16x16 conv 3->1024 (bias), a cls token prepended, no embedding scale
  (no_scale_embedding), no embedding layernorm; absolute position table `embed_positions.A` of
  24*24+1+2 rows, used from row 2 on (fairseq offset; rows 0-1 are never read);
- 24 pre-LN multiway layers with sub-LN (torchscale `subln=True`, no deepnorm, residual alpha 1):
  x += out_proj(inner_attn_ln(attn(q_proj, k_proj, v_proj of self_attn_layer_norm(x))));
  x += fc2(ffn_layernorm(gelu(fc1(final_layer_norm(x))))); 16 heads, scale head_dim^-0.5,
  exact (erf) GELU computed in float32, LayerNorm eps 1e-5, all dropouts / drop-path 0;
- final `encoder.layer_norm` (normalize_output=True); `out_norm=False` only means no L2
  normalisation of the output, and with_head=False means no `vision_head`: the tokens returned
  are the layer-normed last hidden states of all 1+N tokens (577 at 384), cls first;
- image-only input sets the multiway split position to -1, so every multiway module runs its
  vision expert `A`; the language experts `B`, the text embedding, the text positions,
  `mask_token`, `vision_head`, `language_head` and `logit_scale` are loaded (strictly, so the
  model has the checkpoint's 675.2M parameters) but never evaluated.

Choices and uncertainty:
- strict loading of every checkpoint key; the key set was derived from the public source, not
  read from the gated file (tests/data/checkpoint_keys/musk.txt says how); should the real file
  carry extra keys, list them in IGNORED_CHECKPOINT_KEYS rather than loosening the check;
- attention uses torch's scaled_dot_product_attention (same maths as torchscale's bmm/softmax,
  not bit-identical: torchscale scales q before the product and softmaxes in float32);
- other input sizes use a bicubic (align_corners=False) resize of the 24x24 position grid, as
  MUSK's checkpoint loader does; torchscale itself asserts 384 and the paper always runs 384;
- a checkpoint whose position grid differs from the configured one is resized the same way at
  load time, as MUSK's `load_model_and_may_interpolate` does;
- random initialisation (weights: random only) approximates MUSK's (trunc-normal 0.02 Linears).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from densebench.models.backbone import TokenBackbone, find_weights, load_state
from densebench.models.block_checkpointing import checkpointed
from densebench.models.weights import needs_weights

ARCH = "musk_large_patch16_384"
"""The timm name the `musk` package registers; the only architecture this builder makes."""

POSITION_OFFSET = 2
"""torchscale/fairseq positions start at 2: token t uses row t + 2 of a position table."""

_LAYER = r"beit3\.encoder\.layers\.\d+\."
_BLOCK = r"(self_attn\.((q|k|v|out)_proj|inner_attn_ln)|self_attn_layer_norm|final_layer_norm)"
_FFN = r"ffn\.{way}\.(fc1|fc2|ffn_layernorm)"

CHECKPOINT_KEY_TABLE: tuple[tuple[str, str], ...] = (
    (r"beit3\.vision_embed\.(cls_token|proj\.(weight|bias))", "vision"),
    (r"beit3\.encoder\.embed_positions\.A\.weight", "vision"),
    (_LAYER + _BLOCK + r"\.A\.(weight|bias)", "vision"),
    (_LAYER + _FFN.format(way="A") + r"\.(weight|bias)", "vision"),
    (r"beit3\.encoder\.layer_norm\.A\.(weight|bias)", "vision"),
    (r"beit3\.text_embed\.weight", "language"),
    (r"beit3\.encoder\.embed_positions\.B\.weight", "language"),
    (_LAYER + _BLOCK + r"\.B\.(weight|bias)", "language"),
    (_LAYER + _FFN.format(way="B") + r"\.(weight|bias)", "language"),
    (r"beit3\.encoder\.layer_norm\.B\.(weight|bias)", "language"),
    (r"beit3\.vision_embed\.mask_token", "unused"),
    (r"(vision_head|language_head)\.weight", "unused"),
    (r"logit_scale", "unused"),
)
"""Checkpoint key -> our parameter: the identity (our module tree mirrors MUSK's), so this table
only classifies each key (full match) by role: `vision` = evaluated for images (the strict core),
`language` = text experts / embeddings, `unused` = MIM mask token and contrastive heads."""

IGNORED_CHECKPOINT_KEYS: tuple[str, ...] = ()
"""Checkpoint keys to drop before the strict load (none known)."""


@dataclass(frozen=True)
class MuskConfig:
    """Hyperparameters of musk_large_patch16_384 (torchscale EncoderConfig for BEiT-3 large)."""

    img_size: int = 384
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    ffn_dim: int = 4096
    layernorm_eps: float = 1e-5
    vocab_size: int = 64010
    max_text_positions: int = 1024

    @property
    def grid(self) -> int:
        """Side of the native patch grid (24 at 384/16)."""
        return self.img_size // self.patch_size


def key_role(key: str) -> str | None:
    """Role of a checkpoint key in CHECKPOINT_KEY_TABLE (vision/language/unused), else None."""
    for pattern, role in CHECKPOINT_KEY_TABLE:
        if re.fullmatch(pattern, key):
            return role
    return None


class Multiway(nn.Module):
    """A torchscale multiway pair: expert A (vision) and B (language); images use A only."""

    def __init__(self, vision: nn.Module, language: nn.Module):
        super().__init__()
        self.A = vision
        self.B = language

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Vision expert (split position -1, i.e. image-only input)."""
        return self.A(x)


def multiway_linear(dim_in: int, dim_out: int) -> Multiway:
    """A multiway pair of biased Linears."""
    return Multiway(nn.Linear(dim_in, dim_out), nn.Linear(dim_in, dim_out))


def multiway_norm(dim: int, eps: float) -> Multiway:
    """A multiway pair of LayerNorms."""
    return Multiway(nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps))


class SelfAttention(nn.Module):
    """torchscale MultiheadAttention (self-attention, sub-LN before the output projection)."""

    def __init__(self, cfg: MuskConfig):
        super().__init__()
        dim = cfg.embed_dim
        self.num_heads = cfg.num_heads
        self.k_proj = multiway_linear(dim, dim)
        self.v_proj = multiway_linear(dim, dim)
        self.q_proj = multiway_linear(dim, dim)
        self.out_proj = multiway_linear(dim, dim)
        self.inner_attn_ln = multiway_norm(dim, cfg.layernorm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T / sqrt(d_h)) v per head, then inner LayerNorm and out_proj."""
        batch, length, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

        attn = F.scaled_dot_product_attention(
            heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        )
        attn = attn.transpose(1, 2).reshape(batch, length, dim)
        return self.out_proj(self.inner_attn_ln(attn))


class FeedForward(nn.Module):
    """torchscale FeedForwardNetwork with sub-LN: fc1, GELU (float32), ffn_layernorm, fc2."""

    def __init__(self, cfg: MuskConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)
        self.ffn_layernorm = nn.LayerNorm(cfg.ffn_dim, eps=cfg.layernorm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """fc2(LN(gelu(fc1(x))))."""
        hidden = self.fc1(x)
        hidden = F.gelu(hidden.float()).type_as(hidden)
        return self.fc2(self.ffn_layernorm(hidden))


class EncoderLayer(nn.Module):
    """A pre-LN multiway block (torchscale EncoderLayer with subln, residual alpha 1)."""

    def __init__(self, cfg: MuskConfig):
        super().__init__()
        self.self_attn = SelfAttention(cfg)
        self.self_attn_layer_norm = multiway_norm(cfg.embed_dim, cfg.layernorm_eps)
        self.ffn = Multiway(FeedForward(cfg), FeedForward(cfg))
        self.final_layer_norm = multiway_norm(cfg.embed_dim, cfg.layernorm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + attn(LN(x)), then x + ffn(LN(x))."""
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return x + self.ffn(self.final_layer_norm(x))


class Encoder(nn.Module):
    """torchscale Encoder: position tables (A vision, B text), layers, final multiway norm."""

    def __init__(self, cfg: MuskConfig):
        super().__init__()
        rows = cfg.grid**2 + 1 + POSITION_OFFSET
        self.embed_positions = Multiway(
            nn.Embedding(rows, cfg.embed_dim), nn.Embedding(cfg.max_text_positions, cfg.embed_dim)
        )
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.depth))
        self.layer_norm = multiway_norm(cfg.embed_dim, cfg.layernorm_eps)


class VisionEmbed(nn.Module):
    """torchscale VisionEmbedding: patch conv, cls token prepended (mask token unused here)."""

    def __init__(self, cfg: MuskConfig):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.proj = nn.Conv2d(
            cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1 + H/p * W/p, D), cls first."""
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)


class Beit3(nn.Module):
    """torchscale BEiT3: text embedding, vision embedding, multiway encoder."""

    def __init__(self, cfg: MuskConfig):
        super().__init__()
        self.text_embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.vision_embed = VisionEmbed(cfg)
        self.encoder = Encoder(cfg)


def resize_grid(table: torch.Tensor, old: int, new: int) -> torch.Tensor:
    """Bicubic (align_corners=False, in float32) resize of an old x old (N, D) position grid."""
    dim = table.shape[-1]
    grid = table.reshape(1, old, old, dim).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(new * new, dim).to(table.dtype)


class MuskEncoder(nn.Module):
    """The MUSK model's module tree; forward_features runs the image path only."""

    def __init__(self, cfg: MuskConfig):
        super().__init__()
        self.cfg = cfg
        self.logit_scale = nn.Parameter(torch.full((), math.log(1 / 0.07)))
        self.beit3 = Beit3(cfg)
        self.language_head = nn.Linear(cfg.embed_dim, cfg.embed_dim, bias=False)
        self.vision_head = nn.Linear(cfg.embed_dim, cfg.embed_dim, bias=False)
        self.grad_checkpointing = False
        """Activation checkpointing of each layer (densebench.models.checkpointing); it acts
        only in training mode with gradients enabled."""

    def vision_positions(self, rows: int, cols: int) -> torch.Tensor:
        """Position embeddings (1, 1 + rows*cols, D) of the cls token and a rows x cols grid."""
        table = self.beit3.encoder.embed_positions.A.weight[POSITION_OFFSET:]
        grid = self.cfg.grid
        if (rows, cols) == (grid, grid):
            return table.unsqueeze(0)
        if rows != cols:
            raise ValueError(f"MUSK: square inputs only, got a {rows}x{cols} patch grid")
        return torch.cat([table[:1], resize_grid(table[1:], grid, rows)]).unsqueeze(0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Final-layernormed hidden states of all tokens (B, 1 + N, D): MUSK's image call with
        return_global=False, with_head=False, out_norm=False, ms_aug=False."""
        height, width = x.shape[-2:]
        patch = self.cfg.patch_size
        if height % patch or width % patch:
            raise ValueError(f"MUSK: input {height}x{width} is not a multiple of patch {patch}")
        tokens = self.beit3.vision_embed(x)
        tokens = tokens + self.vision_positions(height // patch, width // patch)
        for layer in self.beit3.encoder.layers:
            tokens = checkpointed(layer, tokens) if self.grad_checkpointing else layer(tokens)
        return self.beit3.encoder.layer_norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as forward_features."""
        return self.forward_features(x)


class MuskBackbone(TokenBackbone):
    """MUSK as a token backbone: 1 prefix (cls) token, patch 16, D 1024."""

    def __init__(self, encoder: MuskEncoder):
        cfg = encoder.cfg
        super().__init__(
            encoder, num_prefix_tokens=1, embed_dim=cfg.embed_dim, patch=cfg.patch_size
        )

    def all_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, D): cls then patch tokens, after the encoder's final LayerNorm."""
        return self.encoder.forward_features(x)


def config_from_record(name: str, record: dict[str, Any]) -> MuskConfig:
    """MuskConfig from the record's arch and kwargs (unknown kwargs are an error)."""
    if record.get("arch") != ARCH:
        raise ValueError(f"model {name}: family musk builds only {ARCH}, not {record.get('arch')}")
    kwargs = dict(record.get("kwargs") or {})
    unknown = sorted(set(kwargs) - {f.name for f in fields(MuskConfig)})
    if unknown:
        raise ValueError(f"model {name}: unknown musk kwargs {unknown}")
    return MuskConfig(**kwargs)


def init_random(encoder: MuskEncoder) -> None:
    """Random init close to MUSK's: Linears trunc-normal(0.02, +-0.02), zero biases."""
    for module in encoder.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02, a=-0.02, b=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    nn.init.normal_(encoder.beit3.text_embed.weight, std=encoder.cfg.embed_dim**-0.5)


def match_position_table(state: dict[str, torch.Tensor], cfg: MuskConfig) -> None:
    """Resize the checkpoint's vision position grid in place if it differs from the config's."""
    key = "beit3.encoder.embed_positions.A.weight"
    table = state.get(key)
    extra = 1 + POSITION_OFFSET
    if table is None or table.shape[0] == cfg.grid**2 + extra:
        return
    old = math.isqrt(table.shape[0] - extra)
    if old * old != table.shape[0] - extra:
        return  # not a square grid: left to the shape check
    state[key] = torch.cat([table[:extra], resize_grid(table[extra:], old, cfg.grid)])


def check_checkpoint(name: str, encoder: MuskEncoder, state: dict[str, torch.Tensor]) -> None:
    """Raise, naming the model, unless the checkpoint has exactly our keys and shapes."""
    expected = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    missing = [key for key in expected if key not in state]
    unexpected = sorted(key for key in state if key not in expected)
    problems = []
    if missing:
        vision = [key for key in missing if key_role(key) == "vision"]
        problems.append(
            f"missing {len(missing)} keys {missing[:8]} ({len(vision)} on the image path)"
        )
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys {unexpected[:8]}")
    wrong = [
        f"{key}: {tuple(state[key].shape)} != {shape}"
        for key, shape in expected.items()
        if key in state and tuple(state[key].shape) != shape
    ]
    if wrong:
        problems.append(f"shape mismatch {wrong[:8]}")
    if problems:
        raise ValueError(f"model {name}: MUSK checkpoint does not match: " + "; ".join(problems))


def load_checkpoint(name: str, encoder: MuskEncoder, state: dict[str, torch.Tensor]) -> None:
    """Strictly load a flat MUSK state dict (floats cast to float32) into a (meta) encoder."""
    state = {k: v for k, v in state.items() if k not in IGNORED_CHECKPOINT_KEYS}
    match_position_table(state, encoder.cfg)
    check_checkpoint(name, encoder, state)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    encoder.load_state_dict(state, strict=True, assign=True)


def make_encoder(cfg: MuskConfig, device: str | torch.device = "cpu") -> MuskEncoder:
    """Build the encoder on a device ("meta" allocates nothing); random init off meta."""
    with torch.device(device):
        encoder = MuskEncoder(cfg)
    if torch.device(device).type != "meta":
        init_random(encoder)
    return encoder


def build(name: str, record: dict[str, Any], weights_dir: Path | None) -> TokenBackbone:
    """Build MUSK from the record and load the snapshot's model.safetensors strictly."""
    cfg = config_from_record(name, record)
    if not needs_weights(record):
        return MuskBackbone(make_encoder(cfg))
    encoder = make_encoder(cfg, "meta")
    load_checkpoint(name, encoder, load_state(find_weights(weights_dir, name)))
    return MuskBackbone(encoder)
