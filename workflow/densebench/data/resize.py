"""Resizing of images, masks and logits: the one home of every resize outside the models.

One backend per kind of array:

- stored images and masks (uint8 numpy arrays, before normalisation): OpenCV, as the authors'
  albumentations `Resize` — images bilinear, masks nearest (class indices never blend). The
  training augmentation uses the same interpolation flags (`IMAGE_INTERPOLATION`,
  `MASK_INTERPOLATION`). This is the default evaluation path (`resize` inference).
- normalised image tensors and logits (torch, on the model's device): torch bilinear
  (`align_corners=False`). The `native_resolution_scoring` path resizes the normalised image to
  S x S and its logits back to the label's size; it keeps torch because OpenCV on the uint8
  image would resize before normalisation (rounded to uint8) and change its numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

IMAGE_INTERPOLATION = cv2.INTER_LINEAR
MASK_INTERPOLATION = cv2.INTER_NEAREST  # class indices must never blend


def resize_pair(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image bilinear, mask nearest to size x size (aspect ratio not kept, as the paper)."""
    if image.shape[:2] == (size, size):
        return image, mask
    return (
        cv2.resize(image, (size, size), interpolation=IMAGE_INTERPOLATION),
        cv2.resize(mask, (size, size), interpolation=MASK_INTERPOLATION),
    )


def resize_tensor(batch: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of a (B, C, H, W) float tensor to `shape`."""
    import torch.nn.functional as F

    return F.interpolate(batch, size=tuple(shape), mode="bilinear", align_corners=False)
