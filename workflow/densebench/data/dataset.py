"""Torch datasets over a zarr store: the paper's transforms, seeded order, normalisation.

Items are what the store holds, ready to ship: a uint8 image (3, S, S) and the stored mask
(uint8 by the store's contract: class ids and the ignore index 255). The model's float input is
made on the device after the transfer by `normalise`, bit-identical to the former CPU float
path `(image.float() - 255 mean) / (255 std)` (the same float32 operations), so shipping a
quarter of the bytes changes no number.

Training items go through the authors' albumentations pipeline (densebench.data.augment), reseeded
per (run seed, epoch, sample index), so a sample's augmentation does not depend on batch order,
worker count or a resumed run. RandomFog runs through `fog_particles`, which gives the same
bytes at a fraction of the cost. Evaluation items are resized to S x S as the authors' Resize
(`densebench.data.resize.resize_pair`: OpenCV bilinear for images, nearest for masks), or kept at
native resolution (size None).
The store is opened lazily in each worker process (zarr v3 must not be shared across fork).
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from densebench.data.resize import resize_pair
from densebench.data.store import DatasetStore


class SegmentationSplit(Dataset):
    """One split of a dataset store as (uint8 image, class-index mask) tensors.

    Images are resized to size x size (size None: native resolution); training splits
    (augment=True) use the paper's augmentation pipeline instead, which crops to size x size.
    Item k is the k-th sample of `DatasetStore.indices(split)`: the authors' list order in a
    store written with their split list, else store order. `mean` and `std` (0-1 scale) are
    the normalisation its images get on the device (`normalise(x, data.mean, data.std)`).
    """

    def __init__(
        self,
        store_path: Path,
        split: str,
        size: int | None,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        seed: int = 0,
    ):
        self.store = DatasetStore(store_path)
        self.indices = self.store.indices(split)
        if not self.indices:
            raise ValueError(f"{store_path}: the {split!r} split is empty")
        if augment and size is None:
            raise ValueError("augmentation needs an input size")
        self.size, self.augment, self.seed = size, augment, seed
        self.mean, self.std = tuple(mean), tuple(std)
        self._transform = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Item k, or (epoch, k): the epoch selects the augmentation draw. The image is a
        (3, H, W) view of the (H, W, 3) uint8 array (collation or `normalise` lays it out)."""
        epoch, k = key if isinstance(key, tuple) else (0, key)
        index = self.indices[k]
        image, mask = self.store.read(index)
        if self.augment:
            image, mask = self._augment(image, mask, epoch, index)
        elif self.size is not None:
            image, mask = resize_pair(image, mask, self.size)
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        return img, torch.from_numpy(np.ascontiguousarray(mask))

    def _augment(self, image: np.ndarray, mask: np.ndarray, epoch: int, index: int):
        """The paper's training pipeline, seeded by (run seed, epoch, sample index)."""
        from densebench.data.augment import augment_pair, build_train_transform, sample_seed

        if self._transform is None:  # built lazily, once per worker process
            self._transform = build_train_transform(self.size)
            use_fast_fog(self._transform)
        return augment_pair(self._transform, image, mask, sample_seed(self.seed, epoch, index))

    def sample_id(self, k: int) -> str:
        """Stored id of the k-th sample of this split."""
        return self.store.samples[self.indices[k]]["id"]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """Shuffled sample order of one epoch, a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 2**31]).permutation(n).tolist()


@functools.lru_cache(maxsize=16)
def _grey_levels(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 1, 1) float32 mean and std in grey levels on `device`, computed on the CPU as the
    former CPU path did (float32 tensor times 255.0)."""
    scale = [(torch.tensor(v).view(3, 1, 1) * 255.0).to(device) for v in (mean, std)]
    return scale[0], scale[1]


def normalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float32 model input of uint8 images (..., 3, H, W), on their device, laid out
    contiguously: (x - 255 mean) / (255 std), one float32 subtraction and one division per
    value (correctly rounded on CPU and GPU alike), so bit-identical to the former CPU path."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalise expects uint8 images, got {images.dtype}")
    m, s = _grey_levels(tuple(map(float, mean)), tuple(map(float, std)), images.device)
    return images.to(torch.float32, memory_format=torch.contiguous_format).sub_(m).div_(s)


ROW_ALIGN = 256
"""`fog_particles` blends blocks of whole rows starting at a multiple of this many bytes from
the image start and ending on one (or at the image end), so every value sits at the same
position relative to OpenCV's vector loop as in a whole-image blend: the same code path, the
same rounding (256 bytes covers vector widths up to AVX-512 unrolled 4x)."""


def _row_step(width_bytes: int) -> int:
    """Rows per alignment block of an image whose rows hold `width_bytes` bytes."""
    return ROW_ALIGN // math.gcd(ROW_ALIGN, width_bytes)


def fog_particles(
    image: np.ndarray, alpha: float, positions: Sequence[tuple[int, int]], radii: Sequence[int]
) -> np.ndarray:
    """RandomFog's particles on an (H, W, C) uint8 image: for each, a white filled circle
    blended into the running result with weight alpha (cv2.addWeighted).

    Only the circle's rows are blended: elsewhere the overlay equals the result and
    addWeighted(v, alpha, v, 1 - alpha) rounds back to v, so the bytes equal a whole-image
    blend per particle, at the cost of the circles' rows instead of the whole image's."""
    height = image.shape[0]
    step = _row_step(image.shape[1] * image.shape[2])
    result = image.copy()
    for (x, y), radius in zip(positions, radii, strict=True):
        top = max(0, (y - radius - 1) // step * step)
        bottom = min(height, -(-(y + radius + 2) // step) * step)
        if bottom <= top:
            continue  # the circle lies wholly above or below the image
        rows = result[top:bottom]
        overlay = rows.copy()
        cv2.circle(overlay, (x, y - top), radius, (255, 255, 255), thickness=-1)
        cv2.addWeighted(overlay, alpha, rows, 1 - alpha, 0, dst=rows)
    return result


def _fast_fog_apply(
    self: Any, img: np.ndarray, particle_positions: list, radiuses: list, intensity: float, **params
) -> np.ndarray:
    """RandomFog.apply with the particles drawn by `fog_particles`, then the stock apply
    without particles (its final blur and clipping)."""
    img = fog_particles(img, self.alpha_coef * intensity, particle_positions, radiuses)
    return type(self).apply(self, img, [], [], intensity, **params)


def use_fast_fog(transform: Any) -> None:
    """Route every RandomFog of an albumentations transform tree through `fog_particles`."""
    from densebench.data.augment import _nodes

    for node in _nodes(transform):
        if type(node).__name__ == "RandomFog":
            node.apply = types.MethodType(_fast_fog_apply, node)
            node._set_keys()  # re-binds the image target to the new apply
