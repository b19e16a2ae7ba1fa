"""What a run's model input looks like: its side, its normalisation, its decoder's upsampling.

Pure functions of the registry records (no torch): the run spec resolves them once per cell.
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


def normalisation(model: Mapping[str, Any], own: bool) -> Normalisation:
    """Mean/std: the model's own with the `model_normalisation` fix, else the paper's choice."""
    return Normalisation.from_dict(model["normalisation"]["model" if own else "paper"])
