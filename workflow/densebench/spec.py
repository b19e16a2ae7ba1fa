"""Run specifications: everything one (dataset, model, strategy) training job needs.

A run spec is a plain JSON-serialisable dict derived from the validated config and the three
registry records. The Snakefile builds it (cheap: no torch) and passes it to the CLI, so a job
is a pure function of its spec and its inputs, and Snakemake reruns a job when its spec changes.
"""

from __future__ import annotations

import json
from typing import Any

from densebench.fixes import resolve_fixes, stage_fixes

DECODER_SCALES = {16: (2.0, 2.0, 2.0, 2.0), 14: (2.0, 2.0, 2.0, 1.75), 8: (2.0, 2.0, 2.0, 1.0)}
"""Upsampling factors of the four decoder blocks per patch size (protocol.md §2.1)."""


def input_size(
    card: dict[str, Any], model: dict[str, Any], max_size: int, override: int | None = None
) -> int:
    """Input side S by the paper's rule: largest multiple of the patch <= min(min side, max).

    A model with a `fixed_input_size` (MUSK: 384) always uses it; a model may round to another
    patch multiple (`input_size_patch`, Lunit: 16); `override` replaces the rule but must be a
    multiple of the patch size.
    """
    patch = int(model["patch_size"])
    if override is not None:
        if override % patch:
            lower, upper = override - override % patch, override - override % patch + patch
            raise ValueError(
                f"input size {override} is not a multiple of the patch size {patch} of model "
                f"{model.get('display_name', '?')}; nearest valid sizes: {lower}, {upper}"
            )
        return int(override)
    if model.get("fixed_input_size"):
        return int(model["fixed_input_size"])
    step = int(model.get("input_size_patch", patch))
    size = (min(int(card["min_side"]), int(max_size)) // step) * step
    if size < patch:
        raise ValueError(
            f"dataset {card.get('display_name', '?')}: images of side {card['min_side']} are "
            f"smaller than one patch ({patch} px) of model {model.get('display_name', '?')}"
        )
    return size


def decoder_scales(patch_size: int) -> tuple[float, ...]:
    """Upsampling factors whose product is the patch size, so logits match the input size."""
    if patch_size not in DECODER_SCALES:
        raise ValueError(
            f"no decoder scales for patch size {patch_size}; supported: {sorted(DECODER_SCALES)}"
        )
    return DECODER_SCALES[patch_size]


def normalisation(model: dict[str, Any], own: bool) -> dict[str, list[float]]:
    """Mean/std: the model's own with the `model_normalisation` fix, else the paper's choice."""
    return model["normalisation"]["model" if own else "paper"]


def build_run_spec(
    config: dict[str, Any],
    dataset: str,
    model: str,
    strategy: str,
    registries: Any,
) -> dict[str, Any]:
    """Assemble the run spec of one (dataset, model, strategy) cell."""
    card = registries.datasets[dataset]
    model_rec = registries.models[model]
    train = config["train"]
    fixes = stage_fixes(resolve_fixes(config), "train", "predict")
    return {
        "dataset": dataset,
        "model": model,
        "strategy": strategy,
        "protocol": config["protocol"],
        "num_classes": len(card["classes"]),
        "ignore_index": int(card.get("ignore_index", 255)),
        "input_size": input_size(card, model_rec, train["max_input_size"], train["input_size"]),
        "normalisation": normalisation(model_rec, fixes["model_normalisation"]),
        "fixes": fixes,
        "model_record": model_rec,
        "strategy_record": registries.strategies[strategy],
        "decoder": config["decoder"],
        "train": train,
        "evaluate": config["evaluate"],
    }


def dumps(spec: dict[str, Any]) -> str:
    """Canonical JSON of a spec (sorted keys, compact), stable across runs."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))
