"""Tiny CPM-15 tree as the Google Drive folder downloads: `cpm15/{Images,Labels}`.

Images are PNG of varying size (one RGBA), labels `.mat` v5 with `inst_map` (int32). Every image
holds instance 1 in NUCLEUS and instance 2 in SECOND; the mask must be 1 on both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.raw_layouts.CoNSeP import save_image, save_mat, tissue, two_nuclei

STEMS = ["image_00", "image_01", "image_02", "image_03"]
SHAPES = {"image_00": (64, 64), "image_01": (80, 64), "image_02": (64, 96), "image_03": (72, 72)}
NUCLEUS = (slice(2, 12), slice(2, 12))
SECOND = (slice(30, 40), slice(40, 52))
RGBA = "image_01"


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny CPM-15 tree under root/cpm15."""
    base = Path(root) / "cpm15"
    for seed, stem in enumerate(STEMS, start=200):
        inst = two_nuclei(SHAPES[stem], NUCLEUS, SECOND)
        rgb = tissue(seed, SHAPES[stem], inst, alpha=stem == RGBA)
        save_image(rgb, base / "Images" / f"{stem}.png")
        save_mat({"inst_map": inst}, base / "Labels" / f"{stem}.mat")


def corrupt_mask(root: Path) -> Path:
    """Give one label an inst_map of the wrong shape (a few rows cut off)."""
    path = Path(root) / "cpm15" / "Labels" / "image_02.mat"
    inst = two_nuclei(SHAPES["image_02"], NUCLEUS, SECOND)[:-5]
    save_mat({"inst_map": np.ascontiguousarray(inst)}, path)
    return path
