"""Torch datasets over a store: seeded augmentation, normalisation, ordering."""

from __future__ import annotations

import pytest
import torch

from densebench.data.dataset import SegmentationSplit, epoch_order
from tests.paper_lists import TEST_ORDER, write_tnbc_store

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_split_items_are_normalised_and_seeded(small_store):
    data = SegmentationSplit(small_store, "train", 32, MEAN, STD, augment=True, seed=3)
    x, y = data[0]
    assert x.shape == (3, 32, 32) and y.shape == (32, 32) and y.dtype == torch.int64
    assert -3 < float(x.mean()) < 3 and x.dtype == torch.float32
    again = [data[(1, k)] for k in range(len(data))]
    assert all(torch.equal(a[0], data[(1, k)][0]) for k, a in enumerate(again))
    changed = any(
        not torch.equal(a[1], data[(epoch, k)][1])
        for epoch in range(2, 8)
        for k, a in enumerate(again)
    )
    assert changed  # augmentation differs between epochs


def test_evaluation_split_is_not_augmented(small_store):
    data = SegmentationSplit(small_store, "test", 32, MEAN, STD)
    assert torch.equal(data[0][0], data[(5, 0)][0])
    native = SegmentationSplit(small_store, "test", None, MEAN, STD)
    _, mask = native.store.read(native.indices[0])
    assert native[0][1].shape == mask.shape and native[0][0].shape[1:] == mask.shape
    assert data.sample_id(0) == data.store.samples[data.indices[0]]["id"]


def test_unknown_split_is_an_error(small_store):
    with pytest.raises(ValueError, match="unknown split 'nope'"):
        SegmentationSplit(small_store, "nope", 32, MEAN, STD)


def test_epoch_order_is_a_seeded_permutation():
    assert sorted(epoch_order(10, 1, 0)) == list(range(10))
    assert epoch_order(10, 1, 0) == epoch_order(10, 1, 0)
    assert epoch_order(10, 1, 0) != epoch_order(10, 1, 1)


def test_paper_split_items_come_in_list_order(tmp_path):
    """Under the paper policy item k of the test split is the k-th entry of the authors' list."""
    store = write_tnbc_store(tmp_path / "paper.zarr")
    data = SegmentationSplit(store, "test", None, MEAN, STD)
    assert tuple(data.sample_id(k) for k in range(len(data))) == TEST_ORDER
    for k in range(len(data)):
        _, mask = data.store.read(data.indices[k])
        assert torch.equal(data[k][1], torch.from_numpy(mask).long())
    seeded = SegmentationSplit(
        write_tnbc_store(tmp_path / "s.zarr", "seeded"), "test", None, MEAN, STD
    )
    assert seeded.indices == sorted(seeded.indices)
