"""transformers backbones: Phikon (ViTModel), Phikon-v2 and Midnight-12k (Dinov2Model), Hibou-L.

The record's `arch` names a transformers model class and its `kwargs` hold that class's config
(hidden size, layers, heads, MLP size or SwiGLU, patch and image size, LayerScale init, registers)
plus two non-config keys: `add_pooling_layer` (a model-constructor argument) and
`interpolate_pos_encoding` (a forward argument). Pretrained weights come from the local snapshot
folder (its config.json and weight file) through `from_pretrained(local_files_only=True)`, which
also maps the hub's key names (encoder.layer.N.attention.attention.query, mlp.weights_in...) onto
the module names of transformers 5 (attention.q_proj, mlp.gate_proj/up_proj...). Loading is
strict: any missing, unexpected or mismatched key raises, except the keys listed in
IGNORED_UNEXPECTED / TOLERATED_MISSING below.

Hibou-L ships remote code (a copy of transformers' Dinov2 with 4 register tokens); it is never
executed. Its checkpoint has the layout of the built-in Dinov2WithRegistersModel (same module
names plus embeddings.register_tokens, registers inserted after the class token, after the
position embedding is added), so that class loads it; a config.json of model_type "dinov2" with
`num_register_tokens` is read into Dinov2WithRegistersConfig (transformers logs a type warning).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from densebench.models.backbone import TokenBackbone, find_weights
from densebench.models.weights import fetch_command, needs_weights

LOG = logging.getLogger(__name__)

MODEL_CLASSES = ("ViTModel", "Dinov2Model", "Dinov2WithRegistersModel")
"""transformers classes a record's `arch` may name."""

INIT_KEYS = ("add_pooling_layer",)
"""Record kwargs passed to the model constructor instead of its config."""

FORWARD_KEYS = ("interpolate_pos_encoding",)
"""Record kwargs passed to every forward call (ViTModel interpolates only when asked)."""

IGNORED_UNEXPECTED = {"ViTModel": re.compile(r"(.*\.)?pooler\.dense\.(weight|bias)")}
"""Checkpoint keys of modules deliberately not built: Phikon's pooler (add_pooling_layer=False)."""

TOLERATED_MISSING = re.compile(r"embeddings\.mask_token")
"""Missing keys accepted: the mask token is only used with bool_masked_pos, never passed here."""

INIT_ONLY_KEYS = ("layerscale_value", "initializer_range", "drop_path_rate")
"""Config keys that only matter for a random init; not compared with a snapshot's config.json."""

SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
"""Index files of sharded snapshots (large models may ship their weights in shards)."""


class HFTokenBackbone(TokenBackbone):
    """A transformers encoder; all_tokens is its last_hidden_state (final layernorm applied)."""

    def __init__(
        self,
        encoder: torch.nn.Module,
        num_prefix_tokens: int,
        embed_dim: int,
        patch: int,
        forward_kwargs: dict[str, Any],
    ):
        super().__init__(encoder, num_prefix_tokens, embed_dim, patch)
        self.forward_kwargs = dict(forward_kwargs)

    def all_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (B, P+N, D): class token, registers, then patches in row-major order."""
        return self.encoder(pixel_values=x, **self.forward_kwargs).last_hidden_state


def model_class(name: str, arch: str) -> type:
    """The transformers class named by the record's arch."""
    if arch not in MODEL_CLASSES:
        raise ValueError(
            f"model {name}: unknown transformers arch {arch!r}; valid: {MODEL_CLASSES}"
        )
    import transformers

    return getattr(transformers, arch)


def split_kwargs(kwargs: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Split record kwargs into (config, constructor, forward) keyword arguments."""
    config = {k: v for k, v in kwargs.items() if k not in INIT_KEYS + FORWARD_KEYS}
    init = {k: kwargs[k] for k in INIT_KEYS if k in kwargs}
    forward = {k: kwargs[k] for k in FORWARD_KEYS if k in kwargs}
    return config, init, forward


def check_loading(name: str, arch: str, weights_dir: Path, info: dict[str, Any]) -> None:
    """Raise naming the model and the keys if the checkpoint does not fit the architecture."""
    ignored = IGNORED_UNEXPECTED.get(arch)
    unexpected = sorted(
        k for k in info["unexpected_keys"] if not (ignored and ignored.fullmatch(k))
    )
    missing = sorted(k for k in info["missing_keys"] if not TOLERATED_MISSING.fullmatch(k))
    mismatched = sorted(str(k) for k in info.get("mismatched_keys", ()))
    errors = list(info.get("error_msgs", ()))
    if unexpected or missing or mismatched or errors:
        raise ValueError(
            f"model {name}: checkpoint in {weights_dir} does not fit {arch}: "
            f"missing keys {missing}, unexpected keys {unexpected}, "
            f"shape mismatches {mismatched}, errors {errors}"
        )


def warn_config_drift(name: str, config: Any, expected: dict[str, Any]) -> None:
    """Log record kwargs that differ from the snapshot's config.json (the snapshot wins)."""
    drift = {
        key: (value, getattr(config, key, None))
        for key, value in expected.items()
        if key not in INIT_ONLY_KEYS and getattr(config, key, None) != value
    }
    if drift:
        LOG.warning(
            "model %s: registry kwargs differ from config.json (record, file): %s", name, drift
        )


def load_pretrained(
    name: str, arch: str, weights_dir: Path, init: dict[str, Any], expected: dict[str, Any]
) -> torch.nn.Module:
    """Load a local snapshot (config.json + weights) strictly, in float32, without network."""
    weights_dir = Path(weights_dir)
    if not any((weights_dir / index).is_file() for index in SHARD_INDEXES):
        find_weights(weights_dir, name)
    if not (weights_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"model {name}: no config.json in {weights_dir}. Fetch it with: {fetch_command(name)}"
        )
    try:
        encoder, info = model_class(name, arch).from_pretrained(
            str(weights_dir),
            local_files_only=True,
            output_loading_info=True,
            dtype=torch.float32,
            **init,
        )
    except RuntimeError as error:  # shape mismatches (ignore_mismatched_sizes=False)
        raise ValueError(
            f"model {name}: checkpoint in {weights_dir} does not fit {arch}: {error}"
        ) from error
    check_loading(name, arch, weights_dir, info)
    warn_config_drift(name, encoder.config, expected)
    return encoder


def build(name: str, record: dict[str, Any], weights_dir: Path | None) -> HFTokenBackbone:
    """Build the encoder from the record (random) or the local snapshot (pretrained)."""
    arch = record["arch"]
    config_kwargs, init, forward = split_kwargs(record.get("kwargs", {}))
    if not needs_weights(record):
        cls = model_class(name, arch)
        encoder = cls(cls.config_class(**config_kwargs), **init)
    else:
        encoder = load_pretrained(name, arch, weights_dir, init, config_kwargs)
    config = encoder.config
    patch = config.patch_size
    return HFTokenBackbone(
        encoder,
        1 + int(getattr(config, "num_register_tokens", 0)),
        int(config.hidden_size),
        int(patch if isinstance(patch, int) else patch[0]),
        forward,
    )
