"""RINGS converter: `{TRAIN,TEST}/IMAGES/*.png` + `MANUAL GLANDS/` + `MANUAL TUMOR/` -> samples.

Recipe (the authors' `RINGS.py`): 0 background, `gland > 0` -> 1, then `tumour > 0` -> 2 (the
tumour mask overrides the gland mask where they overlap). The Mendeley files TRAIN.zip and
TEST.zip unpack to `TRAIN/` and `TEST/` (also accepted one level down, e.g. inside
`RINGS algorithm dataset/`). Both label folders hold binary PNGs with the image's file name;
a missing one is an error (the release is complete; the authors' script would silently treat it
as empty). Sample id = the original file stem (`P1_D7_4_17_3`), as in the authors' `RINGS.json`.
Official split: TRAIN -> "train", TEST -> "test". Group = the patient token before the first
underscore (`P1`) — an interpretation of the file names, not documented by the release.

Instances: the release's masks are binary (no gland ids), so the glands are the 8-connected
components of the `MANUAL GLANDS` mask (`_common.component_objects`): prostate glands are
separated by stroma, but two annotated glands that touch count as one. The tumour mask (areas,
not glands) adds no objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import Sample, check_shapes, read_rgb, relative, require_mask
from densebench.data.converters._common import (
    component_objects,
    files,
    foreground,
    release_root,
    required_class,
)

CONVERTER_VERSION = 1
SPLIT_DIRS = {"TRAIN": "train", "TEST": "test"}
GLANDS, TUMOUR = "MANUAL GLANDS", "MANUAL TUMOR"


def _label(split_dir: Path, label_dir: str, image_path: Path, dataset: str, raw_dir: Path) -> Path:
    """Path of one label PNG of an image; raise naming the image if it is missing."""
    path = split_dir / label_dir / f"{image_path.stem}.png"
    require_mask(image_path, path, dataset, raw_dir, kind="label")
    return path


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield RINGS samples, TRAIN before TEST, in natural file order."""
    raw_dir, dataset, root = release_root(
        raw_dir,
        card,
        lambda folder: any((folder / d / "IMAGES").is_dir() for d in SPLIT_DIRS),
        "no TRAIN/IMAGES or TEST/IMAGES folder",
        "unpack TRAIN.zip and TEST.zip of the RINGS release here",
    )
    gland = required_class(card, "gland", dataset, raw_dir)
    tumour = required_class(card, "tumour", dataset, raw_dir)
    for split_dir, split in SPLIT_DIRS.items():
        folder = root / split_dir
        for image_path in files(folder / "IMAGES"):
            gland_path = _label(folder, GLANDS, image_path, dataset, raw_dir)
            tumour_path = _label(folder, TUMOUR, image_path, dataset, raw_dir)
            image = read_rgb(image_path, dataset, raw_dir)
            mask = np.zeros(image.shape[:2], np.uint8)
            labelled = {}
            for path, value in ((gland_path, gland), (tumour_path, tumour)):
                labelled[value] = fg = foreground(path, dataset, raw_dir)
                check_shapes(image, fg, dataset, path)
                mask[fg] = value
            yield Sample(
                sample_id=image_path.stem,
                image=image,
                mask=mask,
                source_file=relative(image_path, raw_dir),
                group_id=image_path.stem.split("_")[0],
                official_split=split,
                instances=component_objects(labelled[gland]),
            )
