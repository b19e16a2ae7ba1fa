"""The paper's training augmentation (protocol.md §3), pinned to albumentations 2.0.8.

Faithful: the authors' `SegmentationTransforms.get_training_transforms` steps, order and
probabilities (including the explicit p=1.0 of every OneOf member), the argument values they
wrote, bilinear image / nearest-neighbour mask resampling. Normalize and ToTensor are not here:
the caller normalises.

Documented deviations (protocol.md §8 items 15-16):
- Every argument the authors left at the library default is written out below with its
  albumentations 2.0.8 value, and every scalar they passed is written as the range 2.0.8 expands
  it to, so a future albumentations cannot change the pipeline silently. The authors' environment
  was unpinned; older 1.x releases had other defaults (GaussNoise var_limit=(10, 50) in squared
  pixel units instead of std_range=(0.2, 0.44) of the maximum value; CoarseDropout 8 holes of
  8x8 px; GaussianBlur sigma derived from the kernel size; distortions with BORDER_REFLECT_101;
  OpticalDistortion with shift_limit=0.05 and a different distortion scale).
- The authors' Compose(seed=42) has one RNG stream per transform that every DataLoader worker
  replays. Here each sample is reseeded from (run seed, epoch, sample index) via `sample_seed`,
  so augmentation does not depend on workers, batch order or resuming.
- Compose.set_random_seed gives every child the *same* seed, so the first `random() < p` draw is
  identical in all transforms (HorizontalFlip would always be applied when VerticalFlip is).
  `reseed` therefore gives each node of the transform tree its own seed derived from the sample
  seed. (The authors' Compose(seed=42) in 2.0.8 has the same coupling for the parameter-free
  transforms: HorizontalFlip, VerticalFlip and Transpose draw identical streams.)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import numpy as np

from densebench.data.resize import IMAGE_INTERPOLATION, MASK_INTERPOLATION

ALBUMENTATIONS_VERSION = "2.0.8"  # the version whose defaults are written out below
AUTHORS_COMPOSE_SEED = 42  # the authors' Compose(seed=42); overridden per sample by `reseed`


@dataclass(frozen=True, eq=False)
class Step:
    """One albumentations transform (or OneOf group) with its probability and arguments."""

    name: str
    p: float
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    members: tuple[Step, ...] = ()


def _step(
    name: str,
    p: float,
    args: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Step:
    """A leaf step; `args` are the paper's values, `defaults` the written-out 2.0.8 defaults."""
    return Step(name, p, MappingProxyType(dict(args or {})), MappingProxyType(dict(defaults or {})))


def _one_of(p: float, *members: Step) -> Step:
    """A OneOf group choosing one member (weights = members' p) with probability p."""
    return Step("OneOf", p, members=members)


# Border handling of the three distortions: 2.0.8 defaults (1.x used BORDER_REFLECT_101).
# Out-of-image pixels become image 0 and mask class 0 (not the ignore value 255).
_DISTORTION_BORDER = {
    "interpolation": IMAGE_INTERPOLATION,
    "mask_interpolation": MASK_INTERPOLATION,
    "keypoint_remapping_method": "mask",
    "border_mode": cv2.BORDER_CONSTANT,
    "fill": 0,
    "fill_mask": 0,
}

# Authors: GaussNoise() with library defaults. 2.0.8: std 0.2-0.44 of the max value
# (51-112 grey levels); 1.x var_limit=(10, 50) was std 3.2-7.1 grey levels.
_GAUSS_NOISE = {
    "std_range": (0.2, 0.44),
    "mean_range": (0.0, 0.0),
    "per_channel": True,
    "noise_scale_factor": 1,
}

PAPER_PIPELINE: tuple[Step, ...] = (
    _step(
        "RandomResizedCrop",  # size=(S, S) is added by build_transform
        1.0,
        {"scale": (0.5, 1.0), "ratio": (0.75, 1.33)},
        {
            "interpolation": IMAGE_INTERPOLATION,
            "mask_interpolation": MASK_INTERPOLATION,
            "area_for_downscale": None,
        },
    ),
    _step("HorizontalFlip", 0.5),
    _step("VerticalFlip", 0.1),
    _step("RandomRotate90", 0.3),
    _step("Transpose", 0.3),
    _one_of(
        0.3,
        _step(
            "ElasticTransform",
            1.0,
            {"alpha": 1, "sigma": 50},
            {
                "approximate": False,
                "same_dxdy": False,
                "noise_distribution": "gaussian",
                **_DISTORTION_BORDER,
            },
        ),
        _step(
            "GridDistortion",
            1.0,
            {"num_steps": 5, "distort_limit": (-0.3, 0.3)},  # authors: distort_limit=0.3
            {"normalized": True, **_DISTORTION_BORDER},
        ),
        # Authors: distort_limit=0.2. 2.x dropped shift_limit (1.x default 0.05) and rescaled
        # the distortion coefficient, so this is not the 1.x distortion.
        _step(
            "OpticalDistortion",
            1.0,
            {"distort_limit": (-0.2, 0.2)},
            {"mode": "camera", **_DISTORTION_BORDER},
        ),
    ),
    _one_of(
        0.5,
        _step(  # authors: brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1
            "ColorJitter",
            1.0,
            {
                "brightness": (0.6, 1.4),
                "contrast": (0.6, 1.4),
                "saturation": (0.6, 1.4),
                "hue": (-0.1, 0.1),
            },
        ),
        _step(  # authors: 20, 30, 20
            "HueSaturationValue",
            1.0,
            {
                "hue_shift_limit": (-20, 20),
                "sat_shift_limit": (-30, 30),
                "val_shift_limit": (-20, 20),
            },
        ),
        _step(  # authors: 25, 25, 25
            "RGBShift",
            1.0,
            {"r_shift_limit": (-25, 25), "g_shift_limit": (-25, 25), "b_shift_limit": (-25, 25)},
        ),
    ),
    _one_of(
        0.3,
        _step("GaussNoise", 1.0, defaults=_GAUSS_NOISE),
        _step(
            "MultiplicativeNoise",
            1.0,
            {"multiplier": (0.9, 1.1), "per_channel": True},
            {"elementwise": False},
        ),
    ),
    _one_of(
        0.2,
        # 1.x GaussianBlur default sigma_limit=0 (sigma from kernel size); 2.0.8 samples sigma.
        _step("GaussianBlur", 1.0, {"blur_limit": (3, 7)}, {"sigma_limit": (0.5, 3.0)}),
        _step(  # authors: blur_limit=7
            "MotionBlur",
            1.0,
            {"blur_limit": (3, 7)},
            {"allow_shifted": True, "angle_range": (0, 360), "direction_range": (-1.0, 1.0)},
        ),
        _step("MedianBlur", 1.0, {"blur_limit": (3, 7)}),  # authors: blur_limit=7
    ),
    _one_of(
        0.2,
        # brightness_coefficient, brightness_coeff and alpha_coef keep their 1.x names in 2.0.8;
        # the renamed defaults are slant_lower/slant_upper -> slant_range, snow_point_lower/
        # snow_point_upper -> snow_point_range, fog_coef_lower/fog_coef_upper -> fog_coef_range.
        # 1.x drop_length=20 px; 2.0.8 drop_length=None scales it with the image height.
        _step(
            "RandomRain",
            1.0,
            {"brightness_coefficient": 0.7},
            {
                "slant_range": (-10, 10),
                "drop_length": None,
                "drop_width": 1,
                "drop_color": (200, 200, 200),
                "blur_value": 7,
                "rain_type": "default",
            },
        ),
        _step(
            "RandomSnow",
            1.0,
            {"brightness_coeff": 2.5},
            {"snow_point_range": (0.1, 0.3), "method": "bleach"},
        ),
        _step("RandomFog", 1.0, {"alpha_coef": 0.08}, {"fog_coef_range": (0.3, 1)}),
    ),
    _step(  # authors: brightness_limit=0.3, contrast_limit=0.3
        "RandomBrightnessContrast",
        0.4,
        {"brightness_limit": (-0.3, 0.3), "contrast_limit": (-0.3, 0.3)},
        {"brightness_by_max": True, "ensure_safe_range": False},
    ),
    _step("RandomGamma", 0.3, {"gamma_limit": (70, 130)}),
    # Authors: CoarseDropout() with library defaults; 1.x had 8 holes of 8x8 px. fill_mask=None
    # leaves the mask untouched.
    _step(
        "CoarseDropout",
        0.3,
        defaults={
            "num_holes_range": (1, 2),
            "hole_height_range": (0.1, 0.2),
            "hole_width_range": (0.1, 0.2),
            "fill": 0,
            "fill_mask": None,
        },
    ),
)

GEOMETRIC_STEPS: tuple[Step, ...] = PAPER_PIPELINE[:6]  # the steps that move pixels
PHOTOMETRIC_STEPS: tuple[Step, ...] = PAPER_PIPELINE[6:]  # image-only (mask untouched)


def _takes_size(cls: type) -> bool:
    """Whether the transform's constructor takes an output `size`."""
    return "size" in inspect.signature(cls.__init__).parameters


def _instantiate(step: Step, size: int) -> A.BasicTransform | A.BaseCompose:
    """The albumentations object for one step."""
    if step.name == "OneOf":
        return A.OneOf([_instantiate(m, size) for m in step.members], p=step.p)
    cls = getattr(A, step.name)
    kwargs: dict[str, Any] = {**step.defaults, **step.args, "p": step.p}
    if _takes_size(cls):
        kwargs["size"] = (size, size)
    return cls(**kwargs)


def build_transform(size: int, steps: Sequence[Step]) -> A.Compose:
    """A Compose of `steps` producing size x size outputs (when a resizing step is included)."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return A.Compose(
        [_instantiate(s, size) for s in steps],
        seed=AUTHORS_COMPOSE_SEED,
        strict=True,  # unknown argument names raise instead of warning
        mask_interpolation=MASK_INTERPOLATION,
    )


def build_train_transform(size: int) -> A.Compose:
    """The paper's training augmentation for an S x S output (no Normalize/ToTensor)."""
    return build_transform(size, PAPER_PIPELINE)


def sample_seed(run_seed: int, epoch: int, index: int) -> int:
    """A stable 32-bit seed for one sample of one epoch of one run."""
    if min(run_seed, epoch, index) < 0:
        raise ValueError(f"seed parts must be non-negative: {(run_seed, epoch, index)}")
    return int(np.random.SeedSequence((run_seed, epoch, index)).generate_state(1)[0])


def _nodes(transform: A.BasicTransform | A.BaseCompose) -> list[Any]:
    """The transform tree in pre-order (parents before their children)."""
    nodes: list[Any] = [transform]
    if isinstance(transform, A.BaseCompose):
        for child in transform.transforms:
            nodes.extend(_nodes(child))
    return nodes


def reseed(transform: A.Compose, seed: int) -> None:
    """Give every node of the transform tree its own RNG state derived from `seed`."""
    nodes = _nodes(transform)
    states = np.random.SeedSequence(seed).generate_state(len(nodes))
    # Pre-order: a parent's set_random_seed propagates its seed down, children then override.
    for node, state in zip(nodes, states, strict=True):
        node.set_random_seed(int(state))


def augment_pair(
    transform: A.Compose, image: np.ndarray, mask: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Augment an (H,W,3) uint8 image and (H,W) uint8 mask deterministically from `seed`."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2] or mask.dtype != np.uint8:
        raise ValueError(f"mask must be {image.shape[:2]} uint8, got {mask.shape} {mask.dtype}")
    reseed(transform, seed)
    out = transform(image=image, mask=mask)
    out_image, out_mask = out["image"], out["mask"]
    if out_image.dtype != np.uint8 or out_mask.dtype != np.uint8:
        raise RuntimeError(f"augmentation changed dtypes: {out_image.dtype}, {out_mask.dtype}")
    return np.ascontiguousarray(out_image), np.ascontiguousarray(out_mask)
