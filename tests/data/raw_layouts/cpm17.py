"""Tiny CPM-17 tree as the Google Drive folder downloads: `cpm17/{train,test}/{Images,Labels}`.

Images are PNG (one RGBA), labels `.mat` v5 with `inst_map` (int32); stems repeat across train
and test as in the release. Every image holds instance 1 in NUCLEUS and instance 2 in SECOND; the
mask must be 1 on both.
"""

from __future__ import annotations

from pathlib import Path

from tests.data.raw_layouts.CoNSeP import save_image, save_mat, tissue, two_nuclei

FILES = {"train": ["image_00", "image_01", "image_02"], "test": ["image_00", "image_01"]}
SHAPE = (64, 64)
NUCLEUS = (slice(20, 30), slice(20, 30))
SECOND = (slice(50, 60), slice(50, 60))
RGBA = ("test", "image_01")


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny CPM-17 tree under root/cpm17."""
    base = Path(root) / "cpm17"
    seed = 300
    for folder, stems in FILES.items():
        for stem in stems:
            seed += 1
            inst = two_nuclei(SHAPE, NUCLEUS, SECOND)
            rgb = tissue(seed, SHAPE, inst, alpha=(folder, stem) == RGBA)
            save_image(rgb, base / folder / "Images" / f"{stem}.png")
            save_mat({"inst_map": inst}, base / folder / "Labels" / f"{stem}.mat")


def corrupt_mask(root: Path) -> Path:
    """Truncate one label file to a third of its bytes (undecodable)."""
    path = Path(root) / "cpm17" / "test" / "Labels" / "image_00.mat"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path
