"""Tiny Lizard tree as the three Warwick zips extract.

`Lizard_Images1/*.png`, `Lizard_Images2/*.png` (one RGBA) and `Lizard_Labels/{Labels/*.mat,
info.csv}`; labels are `.mat` v5 with `inst_map` (int32), `id`, `class` (N x 1), `bbox`,
`centroid`. Every image holds three hand-drawn nuclei: instance 1 in NUCLEUS with class
CLASSES[stem], instance 2 in SECOND with class 6 (connective), and instance 3 in ORPHAN, which is
missing from `id` (the authors paint it 0). `id` lists instance 2 before instance 1.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.data.raw_layouts.CoNSeP import save_image, save_mat, tissue

IMAGES = {
    "Lizard_Images1": ["consep_1", "consep_2", "crag_1"],
    "Lizard_Images2": ["dpath_1", "glas_2", "glas_10", "pannuke_1"],
}
FOLDS = {
    "consep_1": 1,
    "consep_2": 2,
    "crag_1": 3,
    "dpath_1": 1,
    "glas_2": 2,
    "glas_10": 1,
    "pannuke_1": 3,
}
CLASSES = {
    "consep_1": 2,
    "consep_2": 3,
    "crag_1": 1,
    "dpath_1": 4,
    "glas_2": 5,
    "glas_10": 2,
    "pannuke_1": 3,
}
SHAPES = {"consep_1": (64, 80), "glas_10": (96, 64)}
DEFAULT_SHAPE = (72, 72)
NUCLEUS = (slice(4, 14), slice(6, 18))
SECOND = (slice(30, 42), slice(30, 40))
SECOND_CLASS = 6
ORPHAN = (slice(50, 60), slice(8, 20))
RGBA = "glas_2"
CORRUPT_DETAIL = "[9]"


def shape_of(stem: str) -> tuple[int, int]:
    """Image size of a stem."""
    return SHAPES.get(stem, DEFAULT_SHAPE)


def _label(stem: str) -> dict[str, np.ndarray]:
    """Lizard label variables of one image."""
    inst = np.zeros(shape_of(stem), np.int32)
    inst[NUCLEUS], inst[SECOND], inst[ORPHAN] = 1, 2, 3
    boxes = [NUCLEUS, SECOND]
    return {
        "inst_map": inst,
        "id": np.array([[2], [1]], np.int32),
        "class": np.array([[SECOND_CLASS], [CLASSES[stem]]], np.int32),
        "bbox": np.array([[b[0].start, b[0].stop, b[1].start, b[1].stop] for b in boxes[::-1]]),
        "centroid": np.array(
            [[(b[1].start + b[1].stop) / 2, (b[0].start + b[0].stop) / 2] for b in boxes[::-1]]
        ),
    }


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny Lizard tree under root (Warwick zip layout)."""
    root = Path(root)
    labels = root / "Lizard_Labels"
    for seed, (folder, stem) in enumerate(
        ((f, s) for f, stems in IMAGES.items() for s in stems), start=400
    ):
        variables = _label(stem)
        rgb = tissue(seed, shape_of(stem), variables["inst_map"], alpha=stem == RGBA)
        save_image(rgb, root / folder / f"{stem}.png")
        save_mat(variables, labels / "Labels" / f"{stem}.mat")
    with (labels / "info.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Filename", "Source", "Split"])
        for stem, fold in FOLDS.items():
            writer.writerow([stem, stem.split("_")[0], fold])


def corrupt_mask(root: Path) -> Path:
    """Give one instance class 9 (outside the 7 classes, not 255)."""
    path = Path(root) / "Lizard_Labels" / "Labels" / "dpath_1.mat"
    variables = _label("dpath_1")
    variables["class"][1, 0] = 9
    save_mat(variables, path)
    return path
