"""Torch datasets over a zarr store: resize to the run's input size, augment, normalise.

Augmentation randomness is drawn from a generator seeded by (run seed, epoch, sample index), so
a sample's augmentation does not depend on batch order, worker count or a resumed run.
The store is opened lazily in each worker process (zarr v3 must not be shared across fork).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from densebench.store import DatasetStore

GEOMETRIC_AUGMENTATIONS = (("hflip", 0.5), ("vflip", 0.1), ("rot90", 0.3), ("transpose", 0.3))
"""The paper's geometric augmentations, in its order and probabilities (protocol.md §3)."""


def resize_pair(
    image: np.ndarray, mask: np.ndarray, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image bilinear and mask nearest to size x size (aspect ratio not kept, as the paper)."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().unsqueeze(0)
    msk = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    if img.shape[-2:] != (size, size):
        img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
        msk = F.interpolate(msk, size=(size, size), mode="nearest")
    return img[0], msk[0, 0].long()


def augment(img: torch.Tensor, msk: torch.Tensor, rng: np.random.Generator):
    """Apply the geometric augmentations with their probabilities."""
    for name, prob in GEOMETRIC_AUGMENTATIONS:
        if rng.random() >= prob:
            continue
        if name == "hflip":
            img, msk = img.flip(-1), msk.flip(-1)
        elif name == "vflip":
            img, msk = img.flip(-2), msk.flip(-2)
        elif name == "rot90":
            k = int(rng.integers(1, 4))
            img, msk = img.rot90(k, (-2, -1)), msk.rot90(k, (-2, -1))
        else:
            img, msk = img.transpose(-2, -1), msk.transpose(-2, -1)
    return img.contiguous(), msk.contiguous()


class SegmentationSplit(Dataset):
    """One split of a dataset store as (normalised image, class-index mask) tensors."""

    def __init__(
        self,
        store_path: Path,
        split: str,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        seed: int = 0,
    ):
        self.store = DatasetStore(store_path)
        self.indices = self.store.indices(split)
        if not self.indices:
            raise ValueError(f"{store_path}: the {split!r} split is empty")
        self.size, self.augment, self.seed, self.epoch = size, augment, seed, 0
        self.mean = torch.tensor(mean).view(3, 1, 1) * 255.0
        self.std = torch.tensor(std).view(3, 1, 1) * 255.0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation stream __getitem__ draws from."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.indices[k]
        image, mask = self.store.read(index)
        img, msk = resize_pair(image, mask, self.size)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            img, msk = augment(img, msk, rng)
        return (img - self.mean) / self.std, msk

    def sample_id(self, k: int) -> str:
        """Stored id of the k-th sample of this split."""
        return self.store.samples[self.indices[k]]["id"]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """Shuffled sample order of one epoch, a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 2**31]).permutation(n).tolist()
