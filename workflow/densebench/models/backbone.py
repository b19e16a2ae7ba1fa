"""Backbones built from a model-registry record, exposing last-block tokens.

A backbone wraps an encoder so that `all_tokens(x)` returns the final-normed tokens of the last
block, prefix tokens (class + registers) first, as (B, P+N, D), and `forward(x)` the N patch
tokens only: the only features the paper's decoder uses (protocol.md §1 notes). How an encoder
is built and loaded depends on the record's `family`; each family has one builder module in
`densebench.models.families` with a `build(name, record, weights_dir)` function.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from densebench.models.weights import fetch_command, needs_weights

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""File names looked for, in order, in a model's local weights snapshot."""

FAMILIES = ("timm", "transformers", "conch", "musk")
"""Model families; each is a module densebench.models.families.<family> with build()."""


class TokenBackbone(nn.Module):
    """An encoder whose forward returns patch tokens only (prefix tokens dropped)."""

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


def find_weights(weights_dir: Path, model: str, files: Sequence[str] = WEIGHT_FILES) -> Path:
    """Return the first of `files` in a local snapshot or explain how to fetch it."""
    for name in files:
        if (Path(weights_dir) / name).is_file():
            return Path(weights_dir) / name
    raise FileNotFoundError(
        f"model {model}: no weights ({' or '.join(files)}) in {weights_dir}. "
        f"Fetch them with: {fetch_command(model)}"
    )


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict from safetensors or a torch pickle (weights only)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def build_backbone(
    name: str, record: Mapping[str, Any], weights_dir: Path | None = None
) -> TokenBackbone:
    """Build the backbone of a registry record; pretrained ones load local weights strictly."""
    family = record["family"]
    if family not in FAMILIES:
        raise ValueError(f"model {name}: unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    if needs_weights(record) and weights_dir is None:
        raise ValueError(
            f"model {name} needs pretrained weights; fetch them with: {fetch_command(name)}"
        )
    builder = importlib.import_module(f"densebench.models.families.{family}")
    backbone = builder.build(name, record, weights_dir)
    check_layout(name, record, backbone)
    return backbone


def check_layout(name: str, record: Mapping[str, Any], backbone: TokenBackbone) -> None:
    """Assert the built backbone matches the registry's token layout."""
    built = {
        "num_prefix_tokens": backbone.num_prefix_tokens,
        "embed_dim": backbone.embed_dim,
        "patch_size": backbone.patch_size,
    }
    for key, value in built.items():
        if int(record[key]) != int(value):
            raise ValueError(f"model {name}: registry says {key}={record[key]}, built {value}")
