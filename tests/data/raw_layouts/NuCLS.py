"""Tiny NuCLS raw tree: the corrected single-rater dataset zip, extracted.

`NuCLS_dataset/` holds `rgb/`, `mask/`, `visualization/` (PNG) and `csv/` (annotation tables),
one file per FOV named `<slide>_id-<id>_left-<x0>_top-<y0>_bottom-<y1>_right-<x1>`, plus
`train_test_splits/fold_k_{train,test}.csv` (columns `,slide_name,hospital,type,fold`). Masks
are RGB PNGs: channel 0 the class code (0 outside the FOV, 253 FOV, 1..12 nucleus classes,
99 unlabeled), channels 1 x 2 the instance id. Five FOVs of varying size from three slides;
fold 1 puts slide E2-A1LH in train and BH-A0BL, OL-A66P in test (fold 2 the reverse). FOV i has
nucleus class `CODES[i]` in `NUCLEUS_BOX`, an unlabeled nucleus in `UNLABELED_BOX`, the FOV code
elsewhere except a 2-pixel outside-FOV border. FOV `RGBA` is stored with an alpha channel.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

FOLDER = "NuCLS_dataset"
FOVS = [
    "TCGA-E2-A1LH-DX1_id-5ea40a58ddda5f839898e0ed_left-23528_top-25162_bottom-25226_right-23600",
    "TCGA-E2-A1LH-DX1_id-5ea40a58ddda5f839898e0ed_left-25822_top-25418_bottom-25488_right-25888",
    "TCGA-BH-A0BL-DX1_id-5ea40a1bddda5f839898a7f5_left-30000_top-40000_bottom-40080_right-30064",
    "TCGA-BH-A0BL-DX1_id-5ea40a1bddda5f839898a7f5_left-30500_top-40500_bottom-40564_right-30580",
    "TCGA-OL-A66P-DX1_id-5ea40ab3ddda5f83989931f0_left-36783_top-24640_bottom-24712_right-36855",
]
CODES = [1, 3, 6, 12, 9]
FOLD1 = {"TCGA-E2-A1LH-DX1": "train", "TCGA-BH-A0BL-DX1": "test", "TCGA-OL-A66P-DX1": "test"}
NUCLEUS_BOX = (slice(10, 20), slice(10, 20))
UNLABELED_BOX = (slice(30, 36), slice(30, 36))
BORDER = 2
RGBA = 3
CORRUPT_DETAIL = "[42]"
BOX = [10, 10, 19, 19]
COORDS = ["10,19,19,10", "10,10,19,19"]
CSV_HEADER = [
    "",
    "raw_classification",
    "main_classification",
    "super_classification",
    "type",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "coords_x",
    "coords_y",
]


def size_of(name: str) -> tuple[int, int]:
    """(height, width) encoded in a FOV name."""
    fields = dict(part.split("-", 1) for part in name.split("_")[2:])
    return int(fields["bottom"]) - int(fields["top"]), int(fields["right"]) - int(fields["left"])


def mask_array(index: int) -> np.ndarray:
    """The (H, W, 3) uint8 mask of FOV `index`."""
    height, width = size_of(FOVS[index])
    mask = np.zeros((height, width, 3), dtype=np.uint8)
    mask[BORDER:-BORDER, BORDER:-BORDER, 0] = 253
    mask[(*NUCLEUS_BOX, 0)] = CODES[index]
    mask[(*NUCLEUS_BOX, 1)], mask[(*NUCLEUS_BOX, 2)] = 1, 1
    mask[(*UNLABELED_BOX, 0)] = 99
    mask[(*UNLABELED_BOX, 1)], mask[(*UNLABELED_BOX, 2)] = 1, 2
    return mask


def rgb_array(index: int) -> np.ndarray:
    """The (H, W, 3) uint8 RGB image of FOV `index`."""
    height, width = size_of(FOVS[index])
    return np.random.default_rng(1744 + index).integers(0, 256, (height, width, 3), np.uint8)


def _write_splits(folder: Path) -> None:
    """train_test_splits/fold_{1,2}_{train,test}.csv (fold 2 swaps train and test)."""
    folder.mkdir(parents=True, exist_ok=True)
    for fold in (1, 2):
        for split in ("train", "test"):
            wanted = split if fold == 1 else {"train": "test", "test": "train"}[split]
            slides = [s for s, where in FOLD1.items() if where == wanted]
            with (folder / f"fold_{fold}_{split}.csv").open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["", "slide_name", "hospital", "type", "fold"])
                for i, slide in enumerate(slides):
                    writer.writerow([i, slide, slide.split("-")[1], split, fold])


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny NuCLS dataset under root/NuCLS_dataset/."""
    folder = Path(root) / FOLDER
    for sub in ("rgb", "mask", "visualization", "csv"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(FOVS):
        rgb = rgb_array(i)
        if i == RGBA:
            rgb = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
        Image.fromarray(rgb).save(folder / "rgb" / f"{name}.png")
        Image.fromarray(mask_array(i)).save(folder / "mask" / f"{name}.png")
        Image.fromarray(rgb_array(i) // 2).save(folder / "visualization" / f"{name}.png")
        with (folder / "csv" / f"{name}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_HEADER)
            writer.writerow(
                [0, "tumor", "tumor_nonMitotic", "tumor_any", "polyline", *BOX, *COORDS]
            )
    _write_splits(folder / "train_test_splits")


def corrupt_mask(root: Path) -> Path:
    """Put class code 42 (not a NuCLS code) into FOV 2's mask; return its path."""
    path = Path(root) / FOLDER / "mask" / f"{FOVS[2]}.png"
    mask = mask_array(2)
    mask[5, 5, 0] = 42
    Image.fromarray(mask).save(path)
    return path
