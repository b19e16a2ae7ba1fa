"""Tiny CoNIC2022 raw tree: the challenge's Google Drive folder as downloaded.

`CoNIC_Challenge_Train/` (the card's source filename) holds `images.npy` (N, H, W, 3) uint8,
`labels.npy` (N, H, W, 2) uint16 (channel 0 instance ids, channel 1 classes 0..6),
`counts.csv` (per-patch nucleus counts per class) and `patch_info.csv` (one column
`patch_info`, `<source image>-<patch index>`). Six 64 x 64 patches from four source images.
Every patch has nucleus 1 (class `NUCLEUS_CLASS[i]`) in `NUCLEUS_BOX` and nucleus 2
(epithelial, class 2) in `SECOND_BOX`; everything else is background.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

FOLDER = "CoNIC_Challenge_Train"
SIZE = 64
PATCHES = ["consep_1-0000", "consep_1-0001", "crag_2-0000", "crag_2-0001", "glas_3-0000"]
PATCHES += ["pannuke_4-0000"]
NUCLEUS_CLASS = [1, 2, 3, 4, 5, 6]
NUCLEUS_BOX = (slice(8, 16), slice(10, 20))
SECOND_BOX = (slice(40, 48), slice(30, 40))
CORRUPT_DETAIL = "patch 3"
CLASS_NAMES = ["neutrophil", "epithelial", "lymphocyte", "plasma", "eosinophil", "connective"]


def arrays() -> tuple[np.ndarray, np.ndarray]:
    """The images (N, H, W, 3) uint8 and labels (N, H, W, 2) uint16 of the tiny release."""
    rng = np.random.default_rng(2022)
    images = rng.integers(0, 256, (len(PATCHES), SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.zeros((len(PATCHES), SIZE, SIZE, 2), dtype=np.uint16)
    for i, cls in enumerate(NUCLEUS_CLASS):
        labels[(i, *NUCLEUS_BOX, 0)] = 1
        labels[(i, *NUCLEUS_BOX, 1)] = cls
        labels[(i, *SECOND_BOX, 0)] = 2
        labels[(i, *SECOND_BOX, 1)] = 2
    return images, labels


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny CoNIC release under root/CoNIC_Challenge_Train/."""
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = arrays()
    np.save(folder / "images.npy", images)
    np.save(folder / "labels.npy", labels)
    with (folder / "patch_info.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["patch_info"])
        writer.writerows([name] for name in PATCHES)
    with (folder / "counts.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CLASS_NAMES)
        for cls in NUCLEUS_CLASS:
            counts = [int(cls == c) + int(c == 2) for c in range(1, 7)]
            writer.writerow(counts)


def corrupt_mask(root: Path) -> Path:
    """Put class 9 (not a CoNIC class) into patch 3 of labels.npy; return labels.npy."""
    path = Path(root) / FOLDER / "labels.npy"
    labels = np.load(path)
    labels[3, 0, 0, 1] = 9
    np.save(path, labels)
    return path
