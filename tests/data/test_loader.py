"""The data feed: uint8 batches, device-side normalisation, worker independence, OpenCV threads,
and the bit-identical fast RandomFog."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from densebench.data.augment import (
    PAPER_PIPELINE,
    augment_pair,
    build_train_transform,
    build_transform,
    sample_seed,
)
from densebench.data.dataset import SegmentationSplit, fog_particles, normalise, use_fast_fog
from densebench.data.loader import (
    QUEUED_BATCHES,
    device_batch,
    loader_workers,
    make_loader,
    prefetch_factor,
    worker_init,
)
from densebench.spec import build_run_spec

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def spec(demo_config, registries):
    """A demo run spec with batches of 3."""
    config = dict(demo_config, train=dict(demo_config["train"], batch_size=3))
    return build_run_spec(config, "demo_nuclei", "demo_vit_p16", "lora", registries)


def with_workers(spec, workers: int):
    """The spec with `workers` loader workers."""
    execution = replace(spec.train.execution, num_workers=workers)
    return replace(spec, train=replace(spec.train, execution=execution))


def epochs(loader: DataLoader, n: int) -> list:
    """All batches of the first n epochs, in order."""
    out = []
    for epoch in range(n):
        loader.sampler.set_epoch(epoch)
        out.extend(loader)
    return out


def test_loader_ships_uint8_and_the_device_gets_the_former_model_input(spec, small_store):
    data = SegmentationSplit(small_store, "train", 32, MEAN, STD, augment=True, seed=0)
    loader = make_loader(data, with_workers(spec, 0), True, CPU)
    images, masks = next(iter(loader))
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 32, 32)
    assert masks.dtype == torch.uint8 and masks.shape == (3, 32, 32)
    x, y = device_batch((images, masks), CPU, data.mean, data.std)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, normalise(images, MEAN, STD)) and torch.equal(y, masks.long())


def test_batches_do_not_depend_on_the_worker_count(spec, small_store):
    data = SegmentationSplit(small_store, "train", 32, MEAN, STD, augment=True, seed=0)
    serial = epochs(make_loader(data, with_workers(spec, 0), True, CPU), 2)
    parallel = epochs(make_loader(data, with_workers(spec, 2), True, CPU), 2)
    per_epoch = -(-len(data) // 3)
    assert len(serial) == len(parallel) == 2 * per_epoch
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(serial[0][0], serial[per_epoch][0])  # epochs draw differently


def test_unbatched_loader_yields_single_items(spec, small_store):
    data = SegmentationSplit(small_store, "test", None, MEAN, STD)
    items = list(make_loader(data, with_workers(spec, 0), False, CPU, batched=False))
    assert len(items) == len(data)
    assert all(
        torch.equal(x, data[k][0]) and x.dtype == torch.uint8 for k, (x, _) in enumerate(items)
    )


class OpenCVThreads(Dataset):
    """Items report OpenCV's thread count in the process that makes them."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, k: int) -> int:
        return cv2.getNumThreads()


def test_workers_run_opencv_single_threaded(spec, small_store):
    previous = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        loader = DataLoader(OpenCVThreads(), num_workers=1, worker_init_fn=worker_init)
        assert [int(t) for t in loader] == [1, 1]
        data = SegmentationSplit(small_store, "val", 32, MEAN, STD)
        cv2.setNumThreads(1)
        make_loader(data, with_workers(spec, 0), False, CPU, threads=2)
        assert cv2.getNumThreads() == 2  # no workers: OpenCV gets the job's CPUs
    finally:
        cv2.setNumThreads(previous)


def test_loader_settings():
    assert loader_workers(None, 8) == 7 and loader_workers(2, 8) == 2
    assert loader_workers(None, 1) == 0 and loader_workers(0, 8) == 0
    assert prefetch_factor(0) is None and prefetch_factor(1) == QUEUED_BATCHES
    assert prefetch_factor(15) == 2 and prefetch_factor(3) == 3


def leaf_steps():
    """Every single transform of the paper's pipeline."""
    return [m for s in PAPER_PIPELINE for m in (s.members or (s,))]


@pytest.mark.parametrize("step", leaf_steps(), ids=lambda s: s.name)
def test_augmentation_does_not_depend_on_opencv_threads(step):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 280, 3), dtype=np.uint8)
    mask = rng.integers(0, 4, (300, 280), dtype=np.uint8)
    transform = build_transform(256, [replace(step, p=1.0)])
    previous = cv2.getNumThreads()
    outputs = []
    try:
        for threads in (1, 2):
            cv2.setNumThreads(threads)
            outputs.append([augment_pair(transform, image, mask, seed) for seed in range(2)])
    finally:
        cv2.setNumThreads(previous)
    for (a_img, a_mask), (b_img, b_mask) in zip(*outputs, strict=True):
        assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)


@pytest.mark.parametrize("side", [256, 250, 97])
def test_fast_fog_gives_the_stock_bytes(side):
    fog = next(s for s in leaf_steps() if s.name == "RandomFog")
    stock = build_transform(side, [replace(fog, p=1.0)])
    fast = build_transform(side, [replace(fog, p=1.0)])
    use_fast_fog(fast)
    rng = np.random.default_rng(side)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    mask = np.zeros((side, side), np.uint8)
    for seed in range(6):
        a, b = augment_pair(stock, image, mask, seed), augment_pair(fast, image, mask, seed)
        assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], image)


def test_fog_particles_at_the_borders_and_outside():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (70, 53, 3), dtype=np.uint8)
    positions = [(0, 0), (52, 69), (-30, 10), (20, -40), (26, 120), (10, 35), (60, 5)]
    radii = [5, 9, 31, 41, 3, 40, 12]
    expected = image.copy()
    for (x, y), r in zip(positions, radii, strict=True):  # the stock whole-image blend
        overlay = expected.copy()
        cv2.circle(overlay, (x, y), r, (255, 255, 255), thickness=-1)
        cv2.addWeighted(overlay, 0.05, expected, 1 - 0.05, 0, dst=expected)
    assert np.array_equal(fog_particles(image, 0.05, positions, radii), expected)


def test_pipeline_with_fast_fog_gives_the_stock_bytes():
    stock, fast = build_train_transform(128), build_train_transform(128)
    use_fast_fog(fast)
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (150, 140, 3), dtype=np.uint8)
    mask = rng.integers(0, 4, (150, 140), dtype=np.uint8)
    for index in range(60):
        seed = sample_seed(0, 0, index)
        a, b = augment_pair(stock, image, mask, seed), augment_pair(fast, image, mask, seed)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
