"""Janowczyk nuclei (nuclei.tgz): flat `<base>_original.tif` + `<base>_mask.png` -> samples.

Recipe (the paper's `Janowczyk.py`): image -> RGB; mask -> `mask > 0` -> 1 (0 background,
1 nucleus). The 2000x2000 images are not tiled. Sample id = `<base>` (e.g. `12908_500_f00021`),
exactly the stem of the authors' `Janowczyk.json`. Group = patient id, the part of `<base>` before
the first `_` (as in the tutorial's patient-level folds; uncertain). No official split.

Like the authors' script, an `_original.tif` without its `_mask.png` is skipped with a warning (the
release is described with 143 images, the paper used 141; which two are left out is not
documented, so the card's num_images check is what catches real data loss). Damaged or
undecodable files raise ConversionError.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import (
    Sample,
    conversion_error,
    dataset_label,
    natural_key,
    relative,
)
from densebench.data.converters._common import binary_mask, pair_sample

CONVERTER_VERSION = 1
IMAGE_SUFFIX = "_original.tif"
MASK_SUFFIX = "_mask.png"


def image_files(raw_dir: Path) -> list[Path]:
    """Every `*_original.tif` below raw_dir (macOS `._` shadow files excluded), natural order."""
    paths = [
        p
        for p in raw_dir.rglob(f"*{IMAGE_SUFFIX}")
        if p.is_file() and not p.name.startswith("._") and "__MACOSX" not in p.parts
    ]
    return sorted(paths, key=lambda p: natural_key(relative(p, raw_dir)))


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield Janowczyk nuclei samples in natural file-name order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    images = image_files(raw_dir)
    if not images:
        raise conversion_error(
            dataset,
            raw_dir,
            f"no *{IMAGE_SUFFIX} files",
            "unpack nuclei.tgz from andrewjanowczyk.com into the raw folder",
        )
    for image_path in images:
        base = image_path.name.removesuffix(IMAGE_SUFFIX)
        mask_path = image_path.with_name(base + MASK_SUFFIX)
        if not mask_path.is_file():
            warnings.warn(
                f"dataset {dataset!r}: {relative(image_path, raw_dir)} has no {mask_path.name}; "
                "skipped, as the paper's preprocessing does",
                stacklevel=2,
            )
            continue
        group = base.split("_")[0]
        yield pair_sample(
            image_path, mask_path, dataset, raw_dir, binary_mask, sample_id=base, group_id=group
        )
