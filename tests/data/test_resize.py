"""Resizing of stored images and masks (OpenCV) and of normalised images and logits (torch)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from densebench.data.resize import resize_pair, resize_tensor


def test_resize_pair_keeps_labels_discrete():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    mask = rng.integers(0, 4, (30, 50), dtype=np.uint8)
    img, msk = resize_pair(image, mask, 24)
    assert img.shape == (24, 24, 3) and msk.shape == (24, 24) and msk.dtype == np.uint8
    assert set(np.unique(msk).tolist()) <= set(np.unique(mask).tolist())
    same_img, same_msk = resize_pair(image[:24, :24], mask[:24, :24], 24)
    assert np.array_equal(same_msk, mask[:24, :24]) and np.array_equal(same_img, image[:24, :24])


def test_resize_pair_is_opencv_bilinear_and_nearest():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (37, 21, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, (37, 21), dtype=np.uint8)
    img, msk = resize_pair(image, mask, 32)
    assert np.array_equal(img, cv2.resize(image, (32, 32), interpolation=cv2.INTER_LINEAR))
    assert np.array_equal(msk, cv2.resize(mask, (32, 32), interpolation=cv2.INTER_NEAREST))


def test_resize_tensor_is_torch_bilinear_without_corner_alignment():
    batch = torch.randn(2, 3, 19, 45, generator=torch.Generator().manual_seed(0))
    for shape in ((32, 32), torch.Size((50, 7))):
        want = F.interpolate(batch, size=tuple(shape), mode="bilinear", align_corners=False)
        assert torch.equal(resize_tensor(batch, shape), want)
    default = F.interpolate(batch, size=(32, 32), mode="bilinear")  # predict's former call
    assert torch.equal(resize_tensor(batch, (32, 32)), default)
