"""Torch datasets over a store: resizing, seeded augmentation, normalisation, ordering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densebench.data import SegmentationSplit, augment, epoch_order, resize_pair

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_resize_pair_keeps_labels_discrete():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    mask = rng.integers(0, 4, (30, 50), dtype=np.uint8)
    img, msk = resize_pair(image, mask, 24)
    assert img.shape == (3, 24, 24) and msk.shape == (24, 24) and msk.dtype == torch.int64
    assert set(msk.unique().tolist()) <= {0, 1, 2, 3}
    same_img, same_msk = resize_pair(image[:24, :24], mask[:24, :24], 24)
    assert torch.equal(same_msk, torch.from_numpy(mask[:24, :24]).long())
    assert torch.equal(same_img, torch.from_numpy(image[:24, :24]).permute(2, 0, 1).float())


def test_augment_moves_image_and_mask_together():
    img = torch.arange(2 * 6 * 6, dtype=torch.float32).view(2, 6, 6)[:1].expand(3, 6, 6)
    msk = torch.arange(36).view(6, 6)
    for seed in range(20):
        out_img, out_msk = augment(img, msk, np.random.default_rng(seed))
        assert torch.equal(out_img[0].long(), out_msk)


def test_split_items_are_normalised_and_seeded(small_store):
    data = SegmentationSplit(small_store, "train", 32, MEAN, STD, augment=True, seed=3)
    x, y = data[0]
    assert x.shape == (3, 32, 32) and y.shape == (32, 32)
    assert -3 < float(x.mean()) < 3 and x.dtype == torch.float32
    data.set_epoch(1)
    again = [data[k] for k in range(len(data))]
    data.set_epoch(1)
    assert all(torch.equal(a[0], data[k][0]) for k, a in enumerate(again))
    changed = False
    for epoch in range(2, 8):
        data.set_epoch(epoch)
        changed |= any(not torch.equal(a[1], data[k][1]) for k, a in enumerate(again))
    assert changed  # augmentation differs between epochs


def test_evaluation_split_is_not_augmented(small_store):
    data = SegmentationSplit(small_store, "test", 32, MEAN, STD)
    first = data[0][0]
    data.set_epoch(5)
    assert torch.equal(first, data[0][0])
    assert data.sample_id(0) == data.store.samples[data.indices[0]]["id"]


def test_unknown_split_is_an_error(small_store):
    with pytest.raises(ValueError, match="unknown split 'nope'"):
        SegmentationSplit(small_store, "nope", 32, MEAN, STD)


def test_epoch_order_is_a_seeded_permutation():
    assert sorted(epoch_order(10, 1, 0)) == list(range(10))
    assert epoch_order(10, 1, 0) == epoch_order(10, 1, 0)
    assert epoch_order(10, 1, 0) != epoch_order(10, 1, 1)
