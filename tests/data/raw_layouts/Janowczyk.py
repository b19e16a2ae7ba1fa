"""Tiny Janowczyk nuclei tree as nuclei.tgz extracts: flat `<base>_original.tif`, `<base>_mask.png`.

Images are RGB TIFFs, masks 8-bit grey PNGs with 0 background and 255 for the (sparsely)
annotated nuclei. Bases are real names: patients 9036, 12908 and 13459 (two images). `KNOWN` is
a hand-drawn nucleus box in the first image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

BASES = ("9036_500_f00002", "12908_500_f00021", "13459_500_f00001", "13459_500_f00020")
SHAPE = (96, 96)
KNOWN = (BASES[0], (slice(20, 32), slice(40, 50)))
"""(base, (rows, cols)): a nucleus drawn into the first mask."""


def _image(index: int) -> np.ndarray:
    """A deterministic purple RGB tile."""
    rng = np.random.default_rng(200 + index)
    base = np.array([170, 110, 190], np.int16)
    noise = rng.integers(-50, 50, (*SHAPE, 3), dtype=np.int16)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _mask(index: int) -> np.ndarray:
    """0/255 mask with a few round nuclei."""
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    mask = np.zeros(SHAPE, np.uint8)
    for k in range(3):
        cy, cx = 60 + 8 * k, 15 + 25 * k + 3 * index
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = 255
    return mask


def make_raw(root: Path, card: dict) -> None:
    """Write four image/mask pairs flat into root."""
    root = Path(root)
    root.mkdir(parents=True)
    for i, base in enumerate(BASES):
        mask = _mask(i)
        if base == KNOWN[0]:
            mask[KNOWN[1]] = 255
        Image.fromarray(_image(i), "RGB").save(root / f"{base}_original.tif", format="TIFF")
        Image.fromarray(mask, "L").save(root / f"{base}_mask.png")


def corrupt_mask(root: Path) -> Path:
    """Truncate the third image's mask PNG to half its bytes."""
    path = Path(root) / f"{BASES[2]}_mask.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
