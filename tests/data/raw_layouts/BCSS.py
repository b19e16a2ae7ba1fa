"""Tiny BCSS tree as the Google Drive folder drops: `0_Public-data-Amgad2019_0.25MPP/...`.

`rgbs_colorNormalized/<stem>.png` (RGB; `RGBA` with an alpha channel) and `masks/<stem>.png`
(8-bit grey, pixel = GT code 0..21, 0 = outside the ROI around a rotated-ROI border). Stems are
real BCSS names from five TCGA sites, two of them (E2, OL) in the challenge's test institutes.
`KNOWN` is a hand-drawn box of code 20 (dcis) in the first ROI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RELEASE = "0_Public-data-Amgad2019_0.25MPP"
STEMS = (
    "TCGA-A2-A3XY-DX1_xmin76297_ymin35510_MPP-0.2500",
    "TCGA-AN-A0XU-DX1_xmin26118_ymin18441_MPP-0.2500",
    "TCGA-AR-A0TU-DX1_xmin88352_ymin23098_MPP-0.2500",
    "TCGA-E2-A158-DX1_xmin56083_ymin25872_MPP-0.2500",
    "TCGA-OL-A5RW-DX1_xmin5772_ymin6839_MPP-0.2500",
)
SIZES = ((64, 80), (72, 96), (96, 64), (80, 112), (128, 100))
BORDER = 4
KNOWN = (STEMS[0], (slice(10, 30), slice(20, 44)), 20)
"""(stem, (rows, cols), code): a dcis region drawn into the first mask."""
RGBA = STEMS[2]
CORRUPT_DETAIL = "mask values [22]"


def _image(index: int, shape: tuple[int, int]) -> np.ndarray:
    """A deterministic pinkish RGB tile."""
    rng = np.random.default_rng(100 + index)
    base = np.array([200, 120, 170], np.int16)
    noise = rng.integers(-40, 40, (*shape, 3), dtype=np.int16)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _mask(index: int, shape: tuple[int, int]) -> np.ndarray:
    """GT codes: horizontal bands of codes 1..21 inside a 0 (outside_roi) border."""
    rows = np.arange(shape[0])[:, None] // 12
    mask = np.broadcast_to(1 + (rows + 3 * index) % 21, shape).astype(np.uint8)
    mask[:BORDER], mask[-BORDER:], mask[:, :BORDER], mask[:, -BORDER:] = 0, 0, 0, 0
    return mask


def make_raw(root: Path, card: dict) -> None:
    """Write five ROIs (RGB + code mask) into root/0_Public-data-Amgad2019_0.25MPP/."""
    base = Path(root) / RELEASE
    (base / "rgbs_colorNormalized").mkdir(parents=True)
    (base / "masks").mkdir()
    for i, (stem, shape) in enumerate(zip(STEMS, SIZES, strict=True)):
        mask = _mask(i, shape)
        if stem == KNOWN[0]:
            mask[KNOWN[1]] = KNOWN[2]
        image = _image(i, shape)
        if stem == RGBA:  # alpha 9: must be dropped, not composited
            image = np.dstack([image, np.full(shape, 9, np.uint8)])
        Image.fromarray(image).save(base / "rgbs_colorNormalized" / f"{stem}.png")
        Image.fromarray(mask, "L").save(base / "masks" / f"{stem}.png")


def corrupt_mask(root: Path) -> Path:
    """Write code 22 (no such BCSS class, not 255) into the second ROI's mask."""
    path = Path(root) / RELEASE / "masks" / f"{STEMS[1]}.png"
    mask = np.asarray(Image.open(path)).copy()
    mask[BORDER + 2, BORDER + 2] = 22
    Image.fromarray(mask, "L").save(path)
    return path
