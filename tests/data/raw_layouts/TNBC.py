"""Tiny TNBC tree as TNBC_NucleiSegmentation.zip extracts.

`TNBC_NucleiSegmentation/Slide_XX/XX_n.png` (RGBA) with `GT_XX/XX_n.png` (8-bit grey, 0/255) for
three patients, plus the zip's `__MACOSX/` shadow folder holding an AppleDouble `._` file that is
not a PNG. `KNOWN` is a hand-drawn nucleus box in the first image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RELEASE = "TNBC_NucleiSegmentation"
FILES = {"01": ("01_1", "01_2"), "02": ("02_1",), "03": ("03_1", "03_2")}
SHAPE = (64, 72)
KNOWN = ("01_1", (slice(5, 15), slice(30, 42)))
"""(stem, (rows, cols)): a nucleus drawn into the first GT."""
RGBA = "02_1"
"""Every slide is RGBA, as in the release; this one is named for the alpha check."""
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)


def _rgba(index: int) -> np.ndarray:
    """A deterministic RGBA tile (alpha 255, as in the release)."""
    rng = np.random.default_rng(300 + index)
    rgb = rng.integers(60, 230, (*SHAPE, 3), dtype=np.uint8)
    return np.concatenate([rgb, np.full((*SHAPE, 1), 255, np.uint8)], axis=2)


def _gt(index: int) -> np.ndarray:
    """0/255 mask with two square nuclei."""
    gt = np.zeros(SHAPE, np.uint8)
    gt[40:48, 4 + 5 * index : 12 + 5 * index] = 255
    gt[50:58, 50:60] = 255
    return gt


def make_raw(root: Path, card: dict) -> None:
    """Write five image/GT pairs for patients 01-03 and the __MACOSX junk."""
    base = Path(root) / RELEASE
    index = 0
    for patient, stems in FILES.items():
        (base / f"Slide_{patient}").mkdir(parents=True)
        (base / f"GT_{patient}").mkdir()
        for stem in stems:
            gt = _gt(index)
            if stem == KNOWN[0]:
                gt[KNOWN[1]] = 255
            Image.fromarray(_rgba(index), "RGBA").save(base / f"Slide_{patient}" / f"{stem}.png")
            Image.fromarray(gt, "L").save(base / f"GT_{patient}" / f"{stem}.png")
            index += 1
    junk = Path(root) / "__MACOSX" / RELEASE / "Slide_01"
    junk.mkdir(parents=True)
    (junk / "._01_1.png").write_bytes(APPLEDOUBLE)


def corrupt_mask(root: Path) -> Path:
    """Replace patient 02's GT by one of another size than its image."""
    path = Path(root) / RELEASE / "GT_02" / "02_1.png"
    Image.fromarray(np.zeros((SHAPE[0] - 8, SHAPE[1]), np.uint8), "L").save(path)
    return path
