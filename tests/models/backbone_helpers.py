"""Helpers shared by the backbone tests: checkpoint key names (test data), registry records made
random-init, and full-size backbones on the meta device, built once per model."""

from __future__ import annotations

import copy
import re

import torch

from densebench.models.backbone import build_backbone
from tests.conftest import FIXTURES

KEYS_DIR = FIXTURES / "checkpoint_keys"
META_BACKBONES: dict = {}
"""Full-size meta backbones, built once per model (tests only read them)."""


def read_keys(name: str) -> list[str]:
    """The model's checkpoint key names (test data), comments dropped."""
    lines = (KEYS_DIR / f"{name}.txt").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def keys_of_first_blocks(keys: list[str], block: str, depth: int) -> list[str]:
    """Keys outside numbered blocks (regex `block` with the index as group 1) plus those of
    the first `depth` blocks."""
    pattern = re.compile(block)
    return [k for k in keys if not (m := pattern.search(k)) or int(m.group(1)) < depth]


def record_for(registries, name: str, random: bool = True, **kwargs) -> dict:
    """A copy of the registry record, random-init unless told otherwise, kwargs overridden."""
    record = copy.deepcopy(registries.models[name])
    record["kwargs"].update(kwargs)
    if random:
        record["weights"] = "random"
    return record


def meta_backbone(registries, name: str):
    """The full-size backbone on the meta device."""
    if name not in META_BACKBONES:
        with torch.device("meta"):
            META_BACKBONES[name] = build_backbone(name, record_for(registries, name))
    return META_BACKBONES[name]


def family_kwargs(depth: int, width: int) -> dict[str, dict]:
    """Registry kwargs of a small random model of one model per family (timm, CONCH,
    transformers DINOv2 and ViT, MUSK): `depth` blocks of `width` channels, two heads."""
    heads = {"num_heads": 2}
    return {
        "uni_v1": {"depth": depth, "embed_dim": width, **heads},
        "conch_v1_5": {"depth": depth, "embed_dim": width, **heads},
        "hibou_l": {"num_hidden_layers": depth, "hidden_size": width, "num_attention_heads": 2},
        "phikon": {
            "num_hidden_layers": depth,
            "hidden_size": width,
            "num_attention_heads": 2,
            "intermediate_size": 2 * width,
        },
        "musk": {
            "depth": depth,
            "embed_dim": width,
            **heads,
            "ffn_dim": 2 * width,
            "img_size": 32,
            "vocab_size": 16,
            "max_text_positions": 8,
        },
    }
