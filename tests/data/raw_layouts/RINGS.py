"""RINGS as TRAIN.zip and TEST.zip unpack: `{TRAIN,TEST}/{IMAGES,MANUAL GLANDS,MANUAL TUMOR}/`.

Images are RGB PNGs named `P<patient>_<core>_<a>_<b>_<c>.png`; both label folders hold 1-bit PNG
masks with the image's file name (a benign image's tumour mask is all zero). Five images of
64-80 px from four patients (3 TRAIN, 2 TEST).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.data.raw_layouts import tinted_noise

TINT = (210, 140, 190)  # mean RGB of the images
IMAGES = {  # split folder -> (stem, height, width)
    "TRAIN": [("P1_D7_4_17_3", 64, 64), ("P1_D7_4_17_12", 72, 64), ("P2_F11_13_12_2", 64, 80)],
    "TEST": [("P3_C11_5_10_2", 64, 64), ("P6_E6_16_4_3", 80, 72)],
}
KNOWN = {
    "sample": "P1_D7_4_17_3",
    "gland": (8, 40, 8, 40),
    "tumour": (30, 56, 20, 60),
    "classes": {"gland": 1, "tumour": 2},
}
"""Boxes (y0, y1, x0, x1) of the known sample's masks; tumour overrides gland on the overlap."""


def _box_mask(height: int, width: int, box: tuple[int, int, int, int] | None) -> Image.Image:
    """1-bit PNG image with one filled box (or empty)."""
    mask = np.zeros((height, width), bool)
    if box is not None:
        y0, y1, x0, x1 = box
        mask[y0:y1, x0:x1] = True
    return Image.fromarray(mask)


def _boxes(stem: str, height: int, width: int) -> tuple:
    """(gland box, tumour box or None) of an image."""
    if stem == KNOWN["sample"]:
        return KNOWN["gland"], KNOWN["tumour"]
    gland = (4, height // 2, 4, width // 2)
    return gland, (height // 2, height - 2, 6, 20) if stem.startswith("P2") else None


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny RINGS tree under root."""
    seed = 0
    for split, images in IMAGES.items():
        base = Path(root) / split
        for folder in ("IMAGES", "MANUAL GLANDS", "MANUAL TUMOR"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        for stem, height, width in images:
            seed += 1
            rgb = tinted_noise(height, width, seed, TINT)
            Image.fromarray(rgb).save(base / "IMAGES" / f"{stem}.png")
            gland, tumour = _boxes(stem, height, width)
            _box_mask(height, width, gland).save(base / "MANUAL GLANDS" / f"{stem}.png")
            _box_mask(height, width, tumour).save(base / "MANUAL TUMOR" / f"{stem}.png")


def corrupt_mask(root: Path) -> Path:
    """Replace one tumour mask by one of the wrong shape; return its path."""
    path = Path(root) / "TEST" / "MANUAL TUMOR" / "P3_C11_5_10_2.png"
    _box_mask(32, 48, (1, 5, 1, 5)).save(path)
    return path
