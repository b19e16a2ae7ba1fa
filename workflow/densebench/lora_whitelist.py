"""The authors' LoRA/DoRA whitelist: which models their code gives adapters (`protocol: paper`).

Their code ([F] models/lora.py equip_model_with_lora, models/dora.py equip_model_with_dora)
adapts a model only if its name is in their whitelist and its attention is of the type they
replace (densebench.models.strategies explains both). Torch-free, so that the strategies and the
GPU memory model (densebench.memory) read the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PAPER_ADAPTED_FAMILIES = frozenset({"timm", "conch"})
"""Families whose attention the authors' type-based LoRA/DoRA injection reaches."""
AUTHORS_MODELS = frozenset(
    {"gigapath", "uni_v1", "virchow_v1", "virchow_v2", "patho3dmatrix-vision", "conch_v1",
     "conch_v1_5", "uni_v2", "phikon", "phikon_v2", "hoptimus_0", "hoptimus_1", "kaiko-vits8",
     "kaiko-vits16", "kaiko-vitb8", "kaiko-vitb16", "kaiko-vitl14", "midnight12k",
     "lunit_vits8", "hibou_l", "musk", "PathOrchestra"}
)  # fmt: skip
"""Model names the authors' code builds ([F] models/pfm_seg_models.py get_PFM_model)."""
AUTHORS_LORA_MODELS = frozenset(
    {"uni_v1", "uni_v2", "virchow_v2", "gigapath", "virchow_v1", "phikon", "phikon_v2",
     "hibou_l", "musk", "lunit_vits8", "midnight12k", "hoptimus_0", "hoptimus_1",
     "patho3dmatrix-vision", "kaiko-vitl14", "conch_v1", "conch_v1_5"}
)  # fmt: skip
"""The authors' LoRA/DoRA whitelist ([F] models/lora.py and models/dora.py, identical):
the `if pfm_name in [...]` list plus the `elif pfm_name == 'conch_v1_5'` branch."""


def paper_adapts(record: Mapping[str, Any], name: str | None = None) -> bool:
    """Whether the authors' code gives a model LoRA/DoRA adapters: a whitelisted name (names
    the authors do not know are not checked) and attention of the type they replace."""
    named = name is None or name not in AUTHORS_MODELS or name in AUTHORS_LORA_MODELS
    return named and record["family"] in PAPER_ADAPTED_FAMILIES
