"""CRAG converter: `{train,valid}/Images/*.png` + `Annotation/*.png` (gland ids) -> samples.

Recipe (the authors' `CRAG.py`): every annotated pixel is gland, `mask = (annotation > 0)` -> 1,
background 0. Instances: each annotation id (or colour, for colour-coded copies) is one gland,
renumbered 1..K in order of id. The CRAG v2 release (MILD-Net, Warwick TIA) unpacks to
`CRAG/{train,valid}/{Images,Annotation,Overlay}`; some copies call the test folder `test` and the
label folder `Annotations`, both are accepted. Sample id = the original file stem (`train_12`,
`test_3`), which is what the authors' script keeps and their split list (`CRAG.json`) uses.
Official split: train -> "train", valid/test -> "test". CRAG publishes no patient or slide ids,
so every image is its own group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample, require_mask
from densebench.data.converters._common import (
    MISSING_ANNOTATION,
    class_painter,
    files,
    pair_sample,
    release_root,
)

CONVERTER_VERSION = 1
LABEL_DIRS = ("Annotation", "Annotations")
SPLIT_DIRS = {"train": "train", "valid": "test", "test": "test"}


def _has_split(folder: Path) -> bool:
    """Whether a folder holds CRAG split folders (train/Images, valid/Images or test/Images)."""
    return any((folder / d / "Images").is_dir() for d in SPLIT_DIRS)


def _label_path(split_dir: Path, name: str) -> Path:
    """The annotation file of an image (Annotation/ or Annotations/, same file name)."""
    for label_dir in LABEL_DIRS:
        if (split_dir / label_dir / name).is_file():
            return split_dir / label_dir / name
    return split_dir / LABEL_DIRS[0] / name


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CRAG samples, train before test, in natural file order."""
    raw_dir, dataset, root = release_root(
        raw_dir,
        card,
        _has_split,
        "no train/Images or valid/Images folder",
        "unpack the CRAG v2 archive here so that CRAG/train/Images and CRAG/valid/Images exist",
    )
    gland = class_painter(card, "gland", dataset, raw_dir, objects=True)
    for split_dir, split in SPLIT_DIRS.items():
        for image_path in files(root / split_dir / "Images"):
            label_path = _label_path(root / split_dir, image_path.name)
            require_mask(image_path, label_path, dataset, raw_dir, "annotation", MISSING_ANNOTATION)
            yield pair_sample(image_path, label_path, dataset, raw_dir, gland, official_split=split)
