"""Tiny Kumar tree as the Google Drive folder downloads: `kumar/<split>/{Images,Labels,Overlay}`.

Images are TIFF (one RGBA), labels `.mat` v5 with `inst_map` (int32, one float64 as MATLAB
writes doubles). Every image holds instance 1 in NUCLEUS and instance 2 in SECOND; the mask must
be 1 on both. Two slides share the TCGA patient `TCGA-A7-A13E` (group check).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.raw_layouts.CoNSeP import save_image, save_mat, tissue, two_nuclei

FILES = {
    "train": ["TCGA-A7-A13E-01Z-00-DX1", "TCGA-18-5592-01Z-00-DX1", "TCGA-A7-A13E-01Z-00-DX2"],
    "test_same": ["TCGA-21-5784-01Z-00-DX1"],
    "test_diff": ["TCGA-KB-A93J-01A-01-TS1", "TCGA-AY-A8YK-01A-01-TS1"],
}
SHAPE = (72, 64)
NUCLEUS = (slice(5, 15), slice(30, 44))
SECOND = (slice(50, 60), slice(4, 12))
RGBA = "TCGA-21-5784-01Z-00-DX1"
DOUBLE = "TCGA-18-5592-01Z-00-DX1"


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny Kumar tree under root/kumar."""
    base = Path(root) / "kumar"
    seed = 100
    for folder, stems in FILES.items():
        for stem in stems:
            seed += 1
            inst = two_nuclei(SHAPE, NUCLEUS, SECOND)
            rgb = tissue(seed, SHAPE, inst, alpha=stem == RGBA)
            save_image(rgb, base / folder / "Images" / f"{stem}.tif", fmt="TIFF")
            save_image(rgb[..., :3], base / folder / "Overlay" / f"{stem}.png")
            values = inst.astype(np.float64) if stem == DOUBLE else inst
            save_mat({"inst_map": values}, base / folder / "Labels" / f"{stem}.mat")


def corrupt_mask(root: Path) -> Path:
    """Truncate one label file to half its bytes (undecodable)."""
    path = Path(root) / "kumar" / "test_same" / "Labels" / f"{FILES['test_same'][0]}.mat"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
