"""CONCH backbones: the vision trunks of CONCH (v1) and CONCH v1.5 as timm VisionTransformers.

conch_v1 (`arch: conch_ViT-B-16`): CONCH is a CoCa model whose image tower nests a stock timm
VisionTransformer at `visual.trunk` (ViT-B/16, img 448, dynamic_img_size, no LayerScale); the
paper takes tokens from `visual.trunk.forward_features`. The trunk is built with timm and loaded
from the CONCH checkpoint's `visual.trunk.*` keys; the other towers' keys are dropped by an
explicit list of ignored prefixes, and any other key raises.

conch_v1_5 (`arch: conch_v1_5`): the authors' own copy of a timm-0.8-style ViT-L/16 (LayerScale
1e-6, img 448, attentional pooler unused here) whose attribute names are timm's; its checkpoint
holds `trunk.*`, `attn_pool_contrast.*` and `ln_contrast.*` (PFM_Segmentation loads it strictly
into that module). It is rebuilt with timm's VisionTransformer, except that position embeddings
are resized the DINO way that copy uses (bicubic with scale factor (n + 0.1) / 28, no antialias).

The record's `kwargs` are the VisionTransformer keyword arguments (the real hyperparameters).
Key handling per architecture is the table CHECKPOINT_LAYOUTS; the trunk is loaded strictly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from densebench.models.backbone import TokenBackbone, find_weights, load_state
from densebench.models.weights import needs_weights


@dataclass(frozen=True)
class CheckpointLayout:
    """Where a trunk lives in its checkpoint and which other keys are dropped."""

    files: tuple[str, ...]
    """Weight file names looked for in the snapshot folder, in order."""
    trunk_prefix: str
    """Prefix of the trunk's keys; stripped before loading."""
    ignored: tuple[str, ...]
    """Keys of other towers to drop: an entry ending in '.' is a prefix, otherwise an exact key."""
    renames: tuple[tuple[str, str], ...] = ()
    """(regex, replacement) pairs turning stripped trunk keys into timm names."""


CHECKPOINT_LAYOUTS = {
    "conch_ViT-B-16": CheckpointLayout(
        files=("pytorch_model.bin",),
        trunk_prefix="visual.trunk.",
        ignored=(
            "text.",
            "text_decoder.",
            "visual.attn_pool_contrast.",
            "visual.ln_contrast.",
            "visual.proj_contrast",
            "visual.head.",
            "visual.attn_pool_caption.",
            "visual.ln_caption.",
            "logit_scale",
        ),
    ),
    "conch_v1_5": CheckpointLayout(
        files=("pytorch_model_vision.bin", "conch_v1_5_pytorch_model.bin", "pytorch_model.bin"),
        trunk_prefix="trunk.",
        ignored=("attn_pool_contrast.", "ln_contrast."),
        # The copy's trunk uses timm's names (blocks.N.attn.qkv, blocks.N.ls1.gamma, norm...), so no
        # renames are needed; add (pattern, replacement) pairs here if a checkpoint differs.
        renames=(),
    ),
}
"""Checkpoint layout of each CONCH architecture (see tests/data/checkpoint_keys/conch_*.txt)."""


def dino_resample(pos_embed: torch.Tensor, grid: tuple[int, int], prefix: int) -> torch.Tensor:
    """Resize a square position grid to `grid` as DINO/iBOT do (scale factor with a 0.1 offset)."""
    cls_pos, patch_pos = pos_embed[:, :prefix], pos_embed[:, prefix:]
    side = math.isqrt(patch_pos.shape[1])
    if (side, side) == tuple(grid):
        return pos_embed
    dim = patch_pos.shape[-1]
    patch_pos = patch_pos.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    scale = ((grid[0] + 0.1) / side, (grid[1] + 0.1) / side)
    patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic")
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dim)
    return torch.cat((cls_pos, patch_pos), dim=1)


class DinoPosEmbedViT(VisionTransformer):
    """timm VisionTransformer whose position embeddings are resized with dino_resample."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.reg_token is not None or self.no_embed_class or self.cls_token is None:
            raise ValueError("DinoPosEmbedViT supports a class token only (no registers)")

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Prepend the class token and add the (resized) position embeddings."""
        if not self.dynamic_img_size:
            return super()._pos_embed(x)
        batch, height, width, dim = x.shape
        pos = dino_resample(self.pos_embed, (height, width), self.num_prefix_tokens)
        x = torch.cat((self.cls_token.expand(batch, -1, -1), x.reshape(batch, -1, dim)), dim=1)
        return self.pos_drop(x + pos)


TRUNK_CLASSES = {"conch_ViT-B-16": VisionTransformer, "conch_v1_5": DinoPosEmbedViT}
"""timm trunk class of each CONCH architecture."""


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A flat state dict: unwrap {'state_dict': ...} and a DataParallel 'module.' prefix."""
    state = load_state(path)
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def is_ignored(key: str, layout: CheckpointLayout) -> bool:
    """Whether a checkpoint key belongs to a tower the backbone does not use."""
    return any(key.startswith(p) if p.endswith(".") else key == p for p in layout.ignored)


def trunk_state(name: str, state: dict[str, Any], layout: CheckpointLayout) -> dict[str, Any]:
    """The trunk's tensors under timm names; raise on keys that are neither trunk nor ignored."""
    trunk, stray = {}, []
    for key, value in state.items():
        if key.startswith(layout.trunk_prefix):
            short = key[len(layout.trunk_prefix) :]
            for pattern, replacement in layout.renames:
                short = re.sub(pattern, replacement, short)
            trunk[short] = value
        elif not is_ignored(key, layout):
            stray.append(key)
    if stray:
        shown = sorted(stray)[:20]
        raise ValueError(
            f"model {name}: {len(stray)} unexpected checkpoint keys outside "
            f"{layout.trunk_prefix}* and the ignored towers: {shown}"
        )
    return trunk


def load_trunk(name: str, trunk: torch.nn.Module, state: dict[str, Any]) -> None:
    """Load the trunk strictly; errors name the model and the keys."""
    try:
        missing, unexpected = trunk.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise ValueError(f"model {name}: trunk weights do not fit: {error}") from error
    if missing or unexpected:
        raise ValueError(
            f"model {name}: trunk checkpoint does not fit the architecture: "
            f"missing keys {sorted(missing)}, unexpected keys {sorted(unexpected)}"
        )


def build(name: str, record: dict[str, Any], weights_dir: Path | None) -> TokenBackbone:
    """Build the CONCH trunk from the record's kwargs; load its weights strictly unless random."""
    arch = record["arch"]
    if arch not in CHECKPOINT_LAYOUTS:
        raise ValueError(
            f"model {name}: unknown CONCH arch {arch!r}; valid: {', '.join(CHECKPOINT_LAYOUTS)}"
        )
    pretrained = needs_weights(record)
    layout = CHECKPOINT_LAYOUTS[arch]
    checkpoint = find_weights(weights_dir, name, layout.files) if pretrained else None
    trunk = TRUNK_CLASSES[arch](num_classes=0, **record.get("kwargs", {}))
    if checkpoint is not None:
        load_trunk(name, trunk, trunk_state(name, read_checkpoint(checkpoint), layout))
    return TokenBackbone(
        trunk,
        int(trunk.num_prefix_tokens),
        int(trunk.embed_dim),
        int(trunk.patch_embed.patch_size[0]),
    )
