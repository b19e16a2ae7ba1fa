"""Torch datasets over a store: uint8 items, seeded augmentation, normalisation, ordering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densebench.data.dataset import SegmentationSplit, epoch_order, normalise
from tests.paper_lists import TEST_ORDER, write_tnbc_store

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def former_cpu_path(image: np.ndarray, mean, std) -> torch.Tensor:
    """The float item the dataset used to ship: today's formula, written out."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    return (img - torch.tensor(mean).view(3, 1, 1) * 255.0) / (
        torch.tensor(std).view(3, 1, 1) * 255.0
    )


def test_split_items_are_uint8_and_seeded(small_store):
    data = SegmentationSplit(small_store, "train", 32, MEAN, STD, augment=True, seed=3)
    x, y = data[0]
    assert x.shape == (3, 32, 32) and y.shape == (32, 32)
    assert x.dtype == torch.uint8 and y.dtype == torch.uint8
    assert set(y.unique().tolist()) <= {0, 1, 2, 3, 255}
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
        assert torch.equal(data[k][1], torch.from_numpy(mask))
    seeded = SegmentationSplit(
        write_tnbc_store(tmp_path / "s.zarr", "seeded"), "test", None, MEAN, STD
    )
    assert seeded.indices == sorted(seeded.indices)


@pytest.mark.parametrize(
    ("mean", "std"),
    [(MEAN, STD), ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), ((0.7, 0.6, 0.8), (0.15, 0.2, 0.1))],
)
def test_normalise_on_the_device_is_bit_identical_to_the_former_cpu_path(mean, std):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 37, 29, 3), dtype=np.uint8)
    images[1].reshape(-1, 3)[:256] = np.arange(256, dtype=np.uint8)[:, None]  # every grey level
    batch = torch.from_numpy(images).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8, as collated
    x = normalise(batch.contiguous(), mean, std)
    expected = torch.stack([former_cpu_path(image, mean, std) for image in images])
    assert x.dtype == torch.float32 and x.is_contiguous() and torch.equal(x, expected)
    assert torch.equal(normalise(batch, mean, std), expected)  # from a strided view too
    assert torch.equal(normalise(batch[2], list(mean), list(std)), expected[2])


def test_normalised_store_samples_equal_the_former_items(small_store):
    for augment, size in ((True, 32), (False, 48), (False, None)):
        data = SegmentationSplit(small_store, "train", size, MEAN, STD, augment=augment, seed=3)
        for key in ((0, 0), (1, 2), (4, len(data) - 1)):
            image, mask = data[key]
            native = image.permute(1, 2, 0).numpy()
            assert torch.equal(
                normalise(image, data.mean, data.std), former_cpu_path(native, MEAN, STD)
            )
            assert mask.dtype == torch.uint8 and mask.shape == image.shape[1:]


def test_normalise_refuses_float_input():
    with pytest.raises(TypeError, match="uint8"):
        normalise(torch.zeros(3, 4, 4), MEAN, STD)
