"""Tiny CoCaHis raw tree: the single `CoCaHis.hdf5`, copied as is.

Group `HE`: datasets `raw`, `sn1`, `sn2` (N, H, W, 3) uint8 and per-image attributes
`train_test_split` (str), `patient_num`, `image_num` (int); group `GT`: `GT1`..`GT7` and
`GT_majority_vote` (N, H, W) uint8 0/1. Five 48 x 64 images (W > H, like the real 1388 x 1037)
from three patients, two of them official test images. Image i has cancer (1) in
`CANCER_BOX`; `GT1` differs from the majority vote so the converter must pick the right key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FILE_NAME = "CoCaHis.hdf5"
HEIGHT, WIDTH = 48, 64
SPLITS = ["train", "test", "train", "test", "train"]
PATIENTS = [1, 1, 2, 3, 3]
CORRUPT_DETAIL = "GT_majority_vote[2]"
CANCER_BOX = [(slice(0, 10), slice(0, 20 + 5 * i)) for i in range(len(SPLITS))]


def arrays() -> tuple[np.ndarray, np.ndarray]:
    """Raw images (N, H, W, 3) uint8 and majority-vote masks (N, H, W) uint8."""
    rng = np.random.default_rng(82)
    images = rng.integers(0, 256, (len(SPLITS), HEIGHT, WIDTH, 3), dtype=np.uint8)
    masks = np.zeros((len(SPLITS), HEIGHT, WIDTH), dtype=np.uint8)
    for i, box in enumerate(CANCER_BOX):
        masks[(i, *box)] = 1
    return images, masks


def make_raw(root: Path, card: dict) -> None:
    """Write root/CoCaHis.hdf5."""
    import h5py

    images, masks = arrays()
    Path(root).mkdir(parents=True, exist_ok=True)
    with h5py.File(Path(root) / FILE_NAME, "w") as f:
        he = f.create_group("HE")
        he.create_dataset("raw", data=images)
        he.create_dataset("sn1", data=255 - images)
        he.create_dataset("sn2", data=images // 2)
        he.attrs.create("train_test_split", SPLITS, dtype=h5py.string_dtype())
        he.attrs["patient_num"] = np.array(PATIENTS, dtype=np.int64)
        he.attrs["image_num"] = np.arange(1, len(SPLITS) + 1, dtype=np.int64)
        gt = f.create_group("GT")
        for k in range(1, 8):
            gt.create_dataset(f"GT{k}", data=np.roll(masks, k, axis=2))
        gt.create_dataset("GT_majority_vote", data=masks)


def corrupt_mask(root: Path) -> Path:
    """Write value 3 (not a class) into majority-vote mask 2; return the HDF5 path."""
    import h5py

    path = Path(root) / FILE_NAME
    with h5py.File(path, "r+") as f:
        f["GT/GT_majority_vote"][2, 5, 5] = 3
    return path
