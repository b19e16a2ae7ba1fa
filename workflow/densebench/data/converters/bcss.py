"""BCSS (real release): `0_Public-data-Amgad2019_0.25MPP/{images|rgbs_colorNormalized,masks}`.

Recipe (the paper's `BCSS.py` does nothing): every RGB ROI is paired with the mask of the same
file name in `masks/`; mask pixels are the 22 BCSS ground-truth codes 0..21 and are used directly
as class indices, so 0 (`outside_roi`, the authors' "don't care") is trained as a class, as in the
paper. ROIs are not tiled. `meta/gtruth_codes.tsv`, when present, must agree with the card.

Sample id = the file stem (e.g. `TCGA-OL-A5RW-DX1_xmin5772_ymin6839_MPP-0.2500`), exactly the stem
of the authors' `BCSS.json`. Group = TCGA case (`TCGA-<site>-<participant>`). Official split = the
challenge's institute-wise split: sites OL, LL, E2, EW, GM, S3 -> "test", all others -> "train".

Uncertain: the Google Drive folder names the image folder `rgbs_colorNormalized` (colour-normalised
RGBs) while the authors' paths use `images/` (the name the BCSS download script gives); both are
accepted, `images/` first. Whether the authors' `images/` are the colour-normalised RGBs is not
documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample, conversion_error, dataset_label
from densebench.data.converters._common import bcss_samples

CONVERTER_VERSION = 1
RELEASE_DIR = "0_Public-data-Amgad2019_0.25MPP"
IMAGE_DIRS = ("images", "rgbs_colorNormalized")
TEST_SITES = frozenset({"OL", "LL", "E2", "EW", "GM", "S3"})
MAX_DEPTH = 3


def _is_root(path: Path) -> bool:
    """Whether a folder holds `masks/` next to one of the image folders."""
    return (path / "masks").is_dir() and any((path / d).is_dir() for d in IMAGE_DIRS)


def find_root(raw_dir: Path) -> Path | None:
    """The release folder: raw_dir or the shallowest folder below it holding masks/ + images."""
    level = [raw_dir]
    for _ in range(MAX_DEPTH + 1):
        roots = [p for p in level if _is_root(p)]
        if roots:
            named = [p for p in roots if p.name == RELEASE_DIR]
            return sorted(named or roots)[0]
        level = sorted(c for p in level for c in p.iterdir() if c.is_dir() and c.name != "masks")
    return None


def official_split(stem: str) -> str:
    """ "test" for ROIs of the held-out institutes (TCGA site code), else "train"."""
    parts = stem.split("-")
    return "test" if len(parts) > 1 and parts[1] in TEST_SITES else "train"


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield BCSS ROIs in natural file-name order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = find_root(raw_dir)
    if root is None:
        raise conversion_error(
            dataset,
            raw_dir,
            f"no folder with masks/ and {' or '.join(IMAGE_DIRS)}/",
            f"drop the BCSS Google Drive folder so that <raw>/.../{RELEASE_DIR}/masks and "
            f"<raw>/.../{RELEASE_DIR}/rgbs_colorNormalized exist",
        )
    image_dir = next(root / d for d in IMAGE_DIRS if (root / d).is_dir())
    yield from bcss_samples(
        raw_dir,
        dataset,
        card,
        root,
        image_dir,
        name="{stem}",
        split=official_split,
        missing="the missing mask (download the BCSS folder again)",
    )
