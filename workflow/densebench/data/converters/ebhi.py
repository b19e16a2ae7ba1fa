"""EBHI-Seg converter: `<Category>/image/*.png` + `<Category>/label/<stem>.png` -> samples.

Layout: six category folders (`Adenocarcinoma`, `High-grade IN`, `Low-grade IN`, `Normal`,
`Polyp`, `Serrated adenoma`), each with `image/` and `label/` (binary lesion/gland masks, same
file names), 224 x 224 px; found at any depth up to three below the raw folder (the release
nests them as `EBHI-SEG/...`).

Recipe (the authors' `EBHI.py`): the foreground of an image's label gets the id of its category
(Adenocarcinoma 1 ... Serrated adenoma 6 in the order above), background 0 — a 7-class task whose
class is the image-level category. We binarise with `label > 0`; the authors map only `== 1`, so
0/255 labels (not verified either way) would keep 255 (= ignore) in their data.

Naming (reproduces the authors' script exactly): images and masks are copied into one flat
folder under their ORIGINAL file names, category by category in the order above, so a file name
that occurs in several categories keeps only its LAST category's image and label. That is why
the paper has 2,174 samples although the release holds 2,228 pairs. We do the same: sample id =
the original stem (`GT2016907-1-400-003`); duplicates resolve to the later category; an image
without a label file is skipped, as the authors' script skips it (the card's num_images check
catches an incomplete download). No official split. Group = the case number before the first
hyphen, upper-cased (`GT2016907`, `GTXC2014192`) — our reading of the names, not documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample, natural_key
from densebench.data.converters._common import class_painter, files, pair_sample, release_root

CONVERTER_VERSION = 1
CATEGORIES = {
    "Adenocarcinoma": "adenocarcinoma",
    "High-grade IN": "high_grade_IN",
    "Low-grade IN": "low_grade_IN",
    "Normal": "normal",
    "Polyp": "polyp",
    "Serrated adenoma": "serrated_adenoma",
}
"""Category folder -> card class, in the authors' processing order (later ones overwrite)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _has_categories(folder: Path) -> bool:
    """Whether a folder holds at least one `<Category>/image` folder."""
    return any((folder / name / "image").is_dir() for name in CATEGORIES)


def _pairs(root: Path) -> dict[str, tuple[str, Path, Path]]:
    """stem -> (category, image, label); a later category overwrites an earlier one."""
    pairs: dict[str, tuple[str, Path, Path]] = {}
    for category in CATEGORIES:
        for image_path in files(root / category / "image", IMAGE_SUFFIXES):
            label_path = root / category / "label" / f"{image_path.stem}.png"
            if label_path.is_file():
                pairs[image_path.stem] = (category, image_path, label_path)
    return pairs


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield EBHI samples in natural order of their (original) file stems."""
    raw_dir, dataset, root = release_root(
        raw_dir,
        card,
        _has_categories,
        f"no category folder ({', '.join(CATEGORIES)}) with an image/ folder",
        "unpack the EBHI-Seg archive here so that e.g. EBHI-SEG/Normal/image exists",
    )
    paint = {c: class_painter(card, name, dataset, raw_dir) for c, name in CATEGORIES.items()}
    pairs = _pairs(root)
    for stem in sorted(pairs, key=natural_key):
        category, image_path, label_path = pairs[stem]
        group = stem.split("-")[0].upper()
        yield pair_sample(image_path, label_path, dataset, raw_dir, paint[category], group_id=group)
