"""TNBC (Naylor et al., Zenodo 1175282): `TNBC_NucleiSegmentation/{Slide_XX,GT_XX}/*.png`.

Recipe (the paper's `TNBC.py`): each `Slide_XX/<name>.png` (RGBA; alpha dropped) is paired with
`GT_XX/<name>.png` (0/255); mask = `GT > 0` -> 1 (0 background, 1 nucleus). Sample id = the
original file stem (e.g. `08_4`; names already carry the patient number, so they are unique),
exactly the stem of the authors' `TNBC.json`. Group = the patient number XX of the folder. No
official split. The `__MACOSX/` shadow folder of the zip is ignored.

The authors pair the sorted files of each Slide/GT folder pair by position; here they are paired
by name, which gives the same pairs on the release and fails loudly where a file is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample, conversion_error, dataset_label, relative
from densebench.data.converters._common import binary_mask, pair_sample

CONVERTER_VERSION = 1
RELEASE_DIR = "TNBC_NucleiSegmentation"
SLIDE_PREFIX = "Slide_"
GT_PREFIX = "GT_"


def _has_slides(path: Path) -> bool:
    """Whether a folder holds Slide_XX sub-folders."""
    return any(c.is_dir() and c.name.startswith(SLIDE_PREFIX) for c in path.iterdir())


def find_root(raw_dir: Path) -> Path | None:
    """Folder holding Slide_XX/GT_XX: raw_dir, TNBC_NucleiSegmentation/ or another child."""
    candidates = [raw_dir, raw_dir / RELEASE_DIR]
    candidates += sorted(c for c in raw_dir.iterdir() if c.is_dir() and c.name != "__MACOSX")
    return next((c for c in candidates if c.is_dir() and _has_slides(c)), None)


def png_files(folder: Path) -> list[Path]:
    """PNG files of a folder (case-insensitive suffix), sorted by name as the authors do."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(".png")),
        key=lambda p: p.name,
    )


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield TNBC samples, Slide_01 first, files in name order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = find_root(raw_dir) if raw_dir.is_dir() else None
    if root is None:
        raise conversion_error(
            dataset,
            raw_dir,
            "no Slide_XX folders",
            f"unpack TNBC_NucleiSegmentation.zip so that <raw>/{RELEASE_DIR}/Slide_01 exists",
        )
    slides = sorted(c for c in root.iterdir() if c.is_dir() and c.name.startswith(SLIDE_PREFIX))
    for slide in slides:
        patient = slide.name.removeprefix(SLIDE_PREFIX)
        gt_dir = root / f"{GT_PREFIX}{patient}"
        for image_path in png_files(slide):
            mask_path = gt_dir / image_path.name
            if not mask_path.is_file():
                raise conversion_error(
                    dataset,
                    image_path,
                    f"image has no ground-truth file {relative(mask_path, raw_dir)}",
                    "re-download TNBC_NucleiSegmentation.zip (every Slide_XX image has a GT_XX "
                    "file of the same name)",
                )
            yield pair_sample(
                image_path, mask_path, dataset, raw_dir, binary_mask, group_id=patient
            )
