"""What a run's model input looks like: its side, its tokens, its normalisation, its decoder's
upsampling.

Pure functions of the registry records (no torch): the run spec resolves them once per cell.
The one home of the input-size rule (`input_size`, and `patch_rule_size` for a variant run at a
requested side; both round by `rounded_side`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DECODER_SCALES = {16: (2.0, 2.0, 2.0, 2.0), 14: (2.0, 2.0, 2.0, 1.75), 8: (2.0, 2.0, 2.0, 1.0)}
"""Upsampling factors of the four decoder blocks per patch size (protocol.md §2.1)."""


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and std (RGB, in [0, 1] units) applied to every input image."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalisation:
        """From a registry-style {mean: [...], std: [...]} mapping (values kept as given)."""
        if set(data) != {"mean", "std"}:
            raise ValueError(f"normalisation needs exactly mean and std, got {sorted(data)}")
        return cls(tuple(data["mean"]), tuple(data["std"]))

    def to_dict(self) -> dict[str, list[float]]:
        """The {mean, std} mapping of the registries and the spec's JSON."""
        return {"mean": list(self.mean), "std": list(self.std)}


def input_size(
    card: Mapping[str, Any], model: Mapping[str, Any], max_size: int, override: int | None = None
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
    size = rounded_side(min(int(card["min_side"]), int(max_size)), model)
    if size < patch:
        raise ValueError(
            f"dataset {card.get('display_name', '?')}: images of side {card['min_side']} are "
            f"smaller than one patch ({patch} px) of model {model.get('display_name', '?')}"
        )
    return size


def size_step(model: Mapping[str, Any]) -> int:
    """What a model's input side is a multiple of: its `input_size_patch`, else its patch."""
    return int(model.get("input_size_patch", model["patch_size"]))


def rounded_side(side: int, model: Mapping[str, Any]) -> int:
    """The paper's rounding: the largest multiple of the model's `size_step` not above `side`."""
    step = size_step(model)
    return (int(side) // step) * step


def patch_rule_size(size: int, model: Mapping[str, Any]) -> int:
    """The input side of a model at a requested S (an input-size variant run,
    densebench.variants): the largest multiple of its patch (or of its `input_size_patch`) not
    above S."""
    name = model.get("display_name", "?")
    if model.get("fixed_input_size"):
        raise ValueError(
            f"model {name} always runs at {model['fixed_input_size']} px (fixed_input_size): "
            "leave it out of the input-size ablation (ablations.input_size.models)"
        )
    patch, step = int(model["patch_size"]), size_step(model)
    rounded = rounded_side(size, model)
    if rounded < patch or rounded % patch:
        raise ValueError(
            f"input size {size} gives no valid side for model {name} (patch {patch}, step {step})"
        )
    return rounded


def tokens(spec: Any) -> int:
    """Tokens of one input image of a run: its patch grid plus the model's prefix (class and
    register) tokens."""
    record = spec.model_record
    side = spec.input_size // int(record["patch_size"])
    return side * side + int(record.get("num_prefix_tokens", 1))


def decoder_scales(patch_size: int) -> tuple[float, ...]:
    """Upsampling factors whose product is the patch size, so logits match the input size."""
    if patch_size not in DECODER_SCALES:
        raise ValueError(
            f"no decoder scales for patch size {patch_size}; supported: {sorted(DECODER_SCALES)}"
        )
    return DECODER_SCALES[patch_size]


def normalisation(model: Mapping[str, Any], own: bool) -> Normalisation:
    """Mean/std: the model's own with the `model_normalisation` fix, else the paper's choice."""
    return Normalisation.from_dict(model["normalisation"]["model" if own else "paper"])
