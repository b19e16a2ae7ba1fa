"""Named fixes of the authors' quirks. `protocol: paper` turns every fix off, `corrected` on;
the config's `fixes:` section overrides single fixes either way.

Each fix belongs to the stage whose output it changes, so changing a scoring fix does not rerun
training: "train" and "predict" fixes enter the run spec of the training job, "score" fixes only
the scoring job's arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIXES: dict[str, tuple[str, str]] = {
    "cosine_period_epochs": (
        "train",
        "cosine period = epochs (paper: fixed T_max 100, LR back up to half at epoch 149)",
    ),
    "frozen_encoder_eval": (
        "train",
        "a frozen encoder stays in eval mode (paper: model.train() reaches it)",
    ),
    "model_normalisation": (
        "train",
        "each model's own mean/std (paper: ImageNet statistics for Lunit and MUSK)",
    ),
    "skip_discarded_cnn_stage": (
        "train",
        "the CNN adapter skips its third stage, whose output the paper computes and discards",
    ),
    "lora_all_families": (
        "train",
        "LoRA/DoRA adapt every model through its adapter_targets (paper: only whitelisted names, "
        "which omit PathOrchestra, and only timm/CONCH-v1.5 attention, which phikon, phikon_v2, "
        "midnight12k, hibou_l and musk lack: these six get no adapter, LoRA/DoRA = frozen)",
    ),
    "standard_lora_init": (
        "train",
        "LoRA/DoRA's A factor drawn with fan_in = in_features as peft does, U(+-1/sqrt(in)) "
        "(paper: the authors' (in, r) lora_a gets fan_in = r, U(+-1/sqrt(r)): 0.25 vs 0.031 at "
        "r 16, D 1024)",
    ),
    "peft_dora": (
        "train",
        "DoRA as peft's use_dora: per-output magnitude, row-wise detached norm (paper: the "
        "authors' scalar magnitude over the whole-matrix Frobenius norm)",
    ),
    "bf16_autocast": (
        "train",
        "bf16 autocast on GPUs that support it (paper: fp16 autocast + GradScaler)",
    ),
    "unet_grid_recipe": (
        "train",
        "the UNet baseline trains with the grid's recipe: soft Dice loss at train.batch_size "
        "(paper: the authors' configs/unet.yaml, cross-entropy with ignore index 255 at batch 4)",
    ),
    "native_resolution_scoring": (
        "predict",
        "resize-mode predictions are scored at the label's native resolution (paper: the label "
        "is resized to S x S)",
    ),
    "standard_metrics": (
        "score",
        "standard metric definitions: one valid-class set, F1 = Dice (paper: per-metric class "
        "sets, inflated Mean_F1/Mean_Precision)",
    ),
}
"""Fix name -> (stage, what it changes)."""


def resolve_fixes(config: dict[str, Any]) -> dict[str, bool]:
    """Every fix's state: the config's explicit value, else on under `corrected`."""
    default = config["protocol"] == "corrected"
    chosen = config.get("fixes") or {}
    unknown = sorted(set(chosen) - set(FIXES))
    if unknown:
        raise ValueError(f"unknown fixes {unknown}; valid fixes: {', '.join(FIXES)}")
    return {name: default if chosen.get(name) is None else bool(chosen[name]) for name in FIXES}


def stage_fixes(fixes: Mapping[str, bool], *stages: str) -> dict[str, bool]:
    """The fixes that belong to the given stages."""
    return {name: on for name, on in fixes.items() if FIXES[name][0] in stages}


def scoring_options(config: dict[str, Any]) -> dict[str, Any]:
    """Metric definitions and background handling of the scoring jobs."""
    standard = resolve_fixes(config)["standard_metrics"]
    exclude = bool(config["evaluate"]["exclude_background"])
    if exclude and not standard:
        raise ValueError(
            "evaluate.exclude_background needs the standard metric definitions (the paper's always "
            "include class 0): set fixes.standard_metrics: true or protocol: corrected"
        )
    return {"definitions": "standard" if standard else "paper", "exclude_background": exclude}
