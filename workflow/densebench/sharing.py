"""Which runs may share one frozen-encoder forward pass (config `train.share_frozen_backbone`).

Three strategies leave the foundation model frozen: frozen, CNN adapter and Transformer adapter
(strategy records with `encoder: frozen`). Their runs of one (dataset, model, variant) use the
same seed, so they see the same batches in the same order with the same augmentations; one
training job can run the encoder once per batch and train the three runs' trainable parts on
its tokens (densebench.train.shared), with results byte-identical to separate runs.

That holds only where the frozen forward pass is itself deterministic. Under `protocol: paper`
`model.train()` reaches the frozen encoder (the `frozen_encoder_eval` fix keeps it in eval
mode), so a model whose record sets a dropout or drop-path rate above zero would draw random
numbers in its encoder: one shared draw instead of one per run changes the numbers, and such a
model trains its runs separately (`random_forward` says why). Every family's defaults are zero
(timm VisionTransformer, transformers ViT / DINOv2 configs, CONCH's trunk, MUSK); only the
record's `kwargs` can set a rate. Pure Python: the plan asks without importing torch;
densebench.models.stochastic checks the built encoder the same way at the start of a shared job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

TRAINED_FILES = ("best.pt", "train_log.csv", "provenance.json")
"""A trained run's outputs (rule `train`), which a shared job stages per run."""

SEPARATOR = "+"
"""Joins the run folders of a shared job's members in its staging folder's name."""
MEMBERS_PATTERN = r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)+"
"""A staging folder's name: two or more run folder names joined by SEPARATOR."""

RANDOM_RATE = re.compile(r"drop")
"""Record `kwargs` keys that set a dropout or drop-path rate (timm `drop_rate`,
`drop_path_rate`, `attn_drop_rate`, `proj_drop_rate`, `pos_drop_rate`, `patch_drop_rate`;
transformers `hidden_dropout_prob`, `attention_probs_dropout_prob`, `drop_path_rate`)."""


def shares_encoder(strategy: Mapping[str, Any]) -> bool:
    """Whether a strategy keeps the whole encoder frozen (its runs can share its forward)."""
    return strategy["encoder"] == "frozen"


def random_rates(record: Mapping[str, Any]) -> dict[str, float]:
    """The record's dropout / drop-path rates above zero (its `kwargs`)."""
    kwargs = record.get("kwargs") or {}
    rates = {}
    for key, value in kwargs.items():
        if RANDOM_RATE.search(key) and isinstance(value, int | float) and float(value) > 0:
            rates[key] = float(value)
    return rates


def random_forward(name: str, record: Mapping[str, Any], fixes: Mapping[str, bool]) -> str | None:
    """Why model `name`'s frozen forward is random in training mode, so its runs cannot share
    one (None: deterministic, they can)."""
    if record.get("family") == "unet":
        return f"{name} has no frozen encoder (the UNet trains from scratch)"
    if fixes.get("frozen_encoder_eval"):
        return None  # the encoder runs in eval mode: dropout and drop-path are off
    rates = random_rates(record)
    if not rates:
        return None
    named = ", ".join(f"{k} = {v:g}" for k, v in sorted(rates.items()))
    return (
        f"{name}'s encoder draws random numbers in training mode ({named}), which reaches the "
        "frozen encoder under the authors' train-mode quirk: one shared draw would change the "
        "runs' numbers, so they train separately (remedy, if that is wanted: the "
        "`frozen_encoder_eval` fix, which changes the runs' identities)"
    )


def staging_name(folders: Iterable[str]) -> str:
    """The staging folder name of a shared job: its members' run folder names joined."""
    return SEPARATOR.join(folders)


def member_folders(name: str) -> list[str]:
    """The run folder names of a shared job's staging folder name."""
    return name.split(SEPARATOR)
