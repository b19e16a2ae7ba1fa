"""Torch datasets over a zarr store: the paper's transforms, normalisation, seeded order.

Training items go through the authors' albumentations pipeline (densebench.data.augment), reseeded
per (run seed, epoch, sample index), so a sample's augmentation does not depend on batch order,
worker count or a resumed run. Evaluation items are resized to S x S as the authors' Resize
(`densebench.data.resize.resize_pair`: OpenCV bilinear for images, nearest for masks), or kept at
native resolution (size None).
The store is opened lazily in each worker process (zarr v3 must not be shared across fork).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from densebench.data.resize import resize_pair
from densebench.data.store import DatasetStore


class SegmentationSplit(Dataset):
    """One split of a dataset store as (normalised image, class-index mask) tensors.

    Images are resized to size x size (size None: native resolution); training splits
    (augment=True) use the paper's augmentation pipeline instead, which crops to size x size.
    Item k is the k-th sample of `DatasetStore.indices(split)`: the authors' list order in a
    store written with their split list, else store order.
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
        self.mean = torch.tensor(mean).view(3, 1, 1) * 255.0
        self.std = torch.tensor(std).view(3, 1, 1) * 255.0
        self._transform = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Item k, or (epoch, k): the epoch selects the augmentation draw."""
        epoch, k = key if isinstance(key, tuple) else (0, key)
        index = self.indices[k]
        image, mask = self.store.read(index)
        if self.augment:
            image, mask = self._augment(image, mask, epoch, index)
        elif self.size is not None:
            image, mask = resize_pair(image, mask, self.size)
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
        msk = torch.from_numpy(np.ascontiguousarray(mask)).long()
        return (img - self.mean) / self.std, msk

    def _augment(self, image: np.ndarray, mask: np.ndarray, epoch: int, index: int):
        """The paper's training pipeline, seeded by (run seed, epoch, sample index)."""
        from densebench.data.augment import augment_pair, build_train_transform, sample_seed

        if self._transform is None:  # built lazily, once per worker process
            self._transform = build_train_transform(self.size)
        return augment_pair(self._transform, image, mask, sample_seed(self.seed, epoch, index))

    def sample_id(self, k: int) -> str:
        """Stored id of the k-th sample of this split."""
        return self.store.samples[self.indices[k]]["id"]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """Shuffled sample order of one epoch, a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 2**31]).permutation(n).tolist()
