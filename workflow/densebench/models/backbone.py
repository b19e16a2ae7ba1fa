"""Backbones built from a model-registry record, exposing last-block patch tokens.

Every backbone is wrapped so that `forward(x)` returns the final-normed tokens of the last block
with the prefix tokens (class + registers) removed, as a (B, N, D) tensor: the only features
the paper's decoder uses (protocol.md §1 notes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""File names looked for, in order, in a model's local weights snapshot."""

_LAYER_NAMES = {"SwiGLUPacked": ("timm.layers", "SwiGLUPacked"), "SiLU": ("torch.nn", "SiLU")}


class TokenBackbone(nn.Module):
    """A ViT whose forward returns patch tokens only (prefix tokens dropped)."""

    def __init__(self, encoder: nn.Module, num_prefix_tokens: int, embed_dim: int, patch: int):
        super().__init__()
        self.encoder = encoder
        self.num_prefix_tokens = num_prefix_tokens
        self.embed_dim = embed_dim
        self.patch_size = patch

    def all_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Final-normed tokens of the last block, prefix tokens included: (B, P+N, D)."""
        return self.encoder.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, N, D)."""
        return self.all_tokens(x)[:, self.num_prefix_tokens :, :]


def _resolve_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map layer names given as strings in the registry (e.g. SwiGLUPacked) to classes."""
    import importlib

    out = dict(kwargs)
    for key in ("mlp_layer", "act_layer"):
        if isinstance(out.get(key), str):
            module, name = _LAYER_NAMES[out[key]]
            out[key] = getattr(importlib.import_module(module), name)
    return out


def find_weights(weights_dir: Path, model: str) -> Path:
    """Return the weight file of a local snapshot or explain how to fetch it."""
    for name in WEIGHT_FILES:
        if (Path(weights_dir) / name).is_file():
            return Path(weights_dir) / name
    raise FileNotFoundError(
        f"model {model}: no weights ({' or '.join(WEIGHT_FILES)}) in {weights_dir}. "
        f"Fetch them with: snakemake --cores 1 resources/weights/{model}"
    )


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict from safetensors or a torch pickle (weights only)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def build_backbone(
    name: str, record: dict[str, Any], weights_dir: Path | None = None
) -> TokenBackbone:
    """Build the backbone of a registry record; load local weights strictly unless random."""
    family = record["family"]
    if family != "timm":
        raise ValueError(
            f"model {name}: family {family!r} cannot be built yet; this release builds timm "
            "backbones only (transformers, CONCH and MUSK loaders come with the model registry)"
        )
    import timm

    arch = record["arch"]
    if arch.startswith("hf-hub:"):
        raise ValueError(f"model {name}: hub architecture {arch} needs its local config")
    encoder = timm.create_model(
        arch, pretrained=False, num_classes=0, **_resolve_kwargs(record.get("kwargs", {}))
    )
    if record.get("weights") != "random":
        if weights_dir is None:
            raise ValueError(f"model {name} needs pretrained weights; pass its weights folder")
        encoder.load_state_dict(load_state(find_weights(weights_dir, name)), strict=True)
    backbone = TokenBackbone(
        encoder, int(record["num_prefix_tokens"]), int(record["embed_dim"]), record["patch_size"]
    )
    _check_layout(name, record, encoder)
    return backbone


def _check_layout(name: str, record: dict[str, Any], encoder: nn.Module) -> None:
    """Assert the built encoder matches the registry's token layout."""
    built = {
        "num_prefix_tokens": int(encoder.num_prefix_tokens),
        "embed_dim": int(encoder.embed_dim),
        "patch_size": int(encoder.patch_embed.patch_size[0]),
    }
    for key, value in built.items():
        if int(record[key]) != value:
            raise ValueError(f"model {name}: registry says {key}={record[key]}, built {value}")
