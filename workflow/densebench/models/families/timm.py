"""timm backbones: architecture and kwargs from the record, weights from the local snapshot."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from densebench.models.backbone import TokenBackbone, find_weights, load_state
from densebench.models.weights import needs_weights

LAYER_NAMES = {"SwiGLUPacked": ("timm.layers", "SwiGLUPacked"), "SiLU": ("torch.nn", "SiLU")}
"""Layer classes a registry record may name as strings."""


def resolve_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map layer names given as strings in the registry (e.g. SwiGLUPacked) to classes."""
    out = dict(kwargs)
    for key in ("mlp_layer", "act_layer"):
        if isinstance(out.get(key), str):
            module, attr = LAYER_NAMES[out[key]]
            out[key] = getattr(importlib.import_module(module), attr)
    return out


def build(name: str, record: dict[str, Any], weights_dir: Path | None) -> TokenBackbone:
    """Create the timm model (no download) and load its weights strictly unless random."""
    import timm

    arch = record["arch"]
    if arch.startswith("hf-hub:"):
        raise ValueError(f"model {name}: hub architecture {arch} needs its local config")
    encoder = timm.create_model(
        arch, pretrained=False, num_classes=0, **resolve_kwargs(record.get("kwargs", {}))
    )
    if needs_weights(record):
        path = find_weights(weights_dir, name)
        try:
            encoder.load_state_dict(load_state(path), strict=True)
        except RuntimeError as error:
            raise ValueError(
                f"model {name}: {path} does not fit the registry architecture {arch}: {error}"
            ) from error
    return TokenBackbone(
        encoder,
        int(encoder.num_prefix_tokens),
        int(encoder.embed_dim),
        int(encoder.patch_embed.patch_size[0]),
    )
