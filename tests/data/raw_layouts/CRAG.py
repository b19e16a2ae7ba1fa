"""CRAG v2 as its archive unpacks: `CRAG/{train,valid}/{Images,Annotation,Overlay}/<stem>.png`.

Images are RGB PNGs named `train_<n>` / `test_<n>` (the test images live in `valid/`);
annotations are gland instance maps (0 background, 1..k glands), one of them 16-bit. One image
is stored as RGBA to exercise alpha dropping. Five images of 64-96 px (3 train, 2 test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.data.raw_layouts import tinted_noise

TINT = (190, 110, 170)  # mean RGB of the images
IMAGES = {  # split folder -> (stem, height, width)
    "train": [("train_1", 72, 96), ("train_2", 64, 80), ("train_3", 80, 64)],
    "valid": [("test_1", 64, 64), ("test_2", 96, 72)],
}
KNOWN = {"sample": "train_1", "class": 1, "glands": [(4, 20, 6, 30), (40, 60, 50, 90)]}
"""The instance boxes (y0, y1, x0, x1) of train_1; every instance becomes class 1."""
RGBA = "train_2"
WIDE_SAMPLE = "test_1"
"""Its annotation is saved as a 16-bit PNG (instance ids above 255 occur in instance maps)."""


def _instances(stem: str, height: int, width: int) -> np.ndarray:
    """Instance map: the known boxes for KNOWN's sample, two small glands elsewhere."""
    inst = np.zeros((height, width), np.uint16)
    boxes = KNOWN["glands"] if stem == KNOWN["sample"] else [(2, 10, 2, 10), (20, 30, 20, 34)]
    for k, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        inst[y0:y1, x0:x1] = 300 + k if stem == WIDE_SAMPLE else k
    return inst


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny CRAG tree under root/CRAG."""
    base = Path(root) / "CRAG"
    seed = 0
    for split, images in IMAGES.items():
        for folder in ("Images", "Annotation", "Overlay"):
            (base / split / folder).mkdir(parents=True, exist_ok=True)
        for stem, height, width in images:
            seed += 1
            rgb = tinted_noise(height, width, seed, TINT)
            inst = _instances(stem, height, width)
            if stem == RGBA:
                alpha = np.full((height, width, 1), 255, np.uint8)
                Image.fromarray(np.concatenate([rgb, alpha], axis=2)).save(
                    base / split / "Images" / f"{stem}.png"
                )
            else:
                Image.fromarray(rgb).save(base / split / "Images" / f"{stem}.png")
            if stem == WIDE_SAMPLE:
                Image.fromarray(inst.astype(np.uint16)).save(
                    base / split / "Annotation" / f"{stem}.png"
                )
            else:
                Image.fromarray(inst.astype(np.uint8)).save(
                    base / split / "Annotation" / f"{stem}.png"
                )
            overlay = rgb.copy()
            overlay[inst > 0] = (0, 255, 0)
            Image.fromarray(overlay).save(base / split / "Overlay" / f"{stem}.png")


def corrupt_mask(root: Path) -> Path:
    """Truncate one annotation PNG (undecodable); return its path."""
    path = Path(root) / "CRAG" / "valid" / "Annotation" / "test_2.png"
    path.write_bytes(path.read_bytes()[:60])
    return path
