"""WSSS4LUAD: `2.validation/{img,mask}/*.png` + `3.testing/{img,mask}/*.png` -> samples.

Recipe (the paper's `WSSS4LUAD.py`): only the validation and test folders have pixel masks (the
training patches carry image-level labels only and are not used). Each mask (palette PNG) is read
as RGB and its colours mapped: (0,64,128) -> 0 tumour epithelium, (64,128,0) -> 1 stroma,
(243,152,0) -> 2 normal, (255,255,255) -> 3 background; any other colour -> 3, as the authors do
(with a warning). `background-mask/` is not used.

Sample id = `sample_{k:06d}` with one running index k over 2.validation then 3.testing, files in
Python `sorted()` (lexicographic) name order within each folder: the authors' naming, so that
`WSSS4LUAD.json` (`sample_000000`..`sample_000119`) maps by stem. Official split: 2.validation ->
"val", 3.testing -> "test"; no patch has a pixel-labelled training split. Group = the patch itself
(`<folder>/<stem>`): the file names do not give the source slide.

Differences from the authors' script that only matter for damaged data: an image without a mask
of the same name (or the reverse) raises ConversionError instead of being skipped, and a mask that
is not a palette / RGB image (e.g. grey values 0..3, which the authors' colour lookup would turn
into all-background) is refused.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    conversion_error,
    dataset_label,
    read_rgb,
    relative,
    require_mask,
)
from densebench.data.converters._common import pair_sample

CONVERTER_VERSION = 1
SPLIT_DIRS = {"2.validation": "val", "3.testing": "test"}
COLOURS = {(0, 64, 128): 0, (64, 128, 0): 1, (243, 152, 0): 2, (255, 255, 255): 3}
UNMAPPED = 3
COLOUR_MODES = ("P", "PA", "RGB", "RGBA")
MAX_DEPTH = 2
MISSING = "the missing mask from the WSSS4LUAD release"


def find_split_dir(raw_dir: Path, name: str) -> Path | None:
    """The shallowest folder called `name` at or below raw_dir (at most MAX_DEPTH levels)."""
    level = [raw_dir]
    for _ in range(MAX_DEPTH + 1):
        hits = sorted(p / name for p in level if (p / name / "img").is_dir())
        if hits:
            return hits[0]
        level = sorted(c for p in level for c in p.iterdir() if c.is_dir() and c.name != "__MACOSX")
    return None


def png_names(folder: Path) -> list[str]:
    """PNG file names of a folder (case-insensitive suffix), Python-sorted as the authors do."""
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(".png")
    )


def _pairs(split_dir: Path, dataset: str, raw_dir: Path) -> list[str]:
    """Image names of a split folder, each checked to have a mask of the same name."""
    mask_dir = split_dir / "mask"
    images = png_names(split_dir / "img")
    masks = set(png_names(mask_dir)) if mask_dir.is_dir() else set()
    for name in images:
        require_mask(split_dir / "img" / name, mask_dir / name, dataset, raw_dir, missing=MISSING)
    extra = sorted(masks - set(images))
    if extra:
        raise conversion_error(
            dataset,
            mask_dir / extra[0],
            "mask has no image of the same name",
            "restore the missing image from the WSSS4LUAD release or remove the mask",
        )
    return images


def colour_mask(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Read a WSSS4LUAD palette mask and map its colours to class indices (unmapped -> 3)."""
    from PIL import Image

    rgb = read_rgb(path, dataset, raw_dir)  # decodes fully: damage surfaces here
    with Image.open(path) as im:
        mode = im.mode
    if mode not in COLOUR_MODES:
        raise conversion_error(
            dataset,
            path,
            f"mask is a {mode!r} image, expected the release's palette (colour) PNG",
            "use the mask files of the original WSSS4LUAD release",
        )
    label = np.full(rgb.shape[:2], UNMAPPED, np.uint8)
    mapped = np.zeros(rgb.shape[:2], bool)
    for colour, index in COLOURS.items():
        hit = np.all(rgb == np.asarray(colour, np.uint8), axis=-1)
        label[hit] = index
        mapped |= hit
    if not mapped.all():
        warnings.warn(
            f"dataset {dataset!r}: {relative(path, raw_dir)} has {int((~mapped).sum())} pixels of "
            f"unknown colours; mapped to {UNMAPPED} (background) as the paper's preprocessing does",
            stacklevel=2,
        )
    return label


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield the validation then the test patches, numbered as the authors number them."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    found = {name: find_split_dir(raw_dir, name) for name in SPLIT_DIRS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise conversion_error(
            dataset,
            raw_dir,
            f"no {' or '.join(f'{m}/img' for m in missing)} folder",
            "unpack the WSSS4LUAD validation and test archives so that <raw>/2.validation/img, "
            "<raw>/2.validation/mask, <raw>/3.testing/img and <raw>/3.testing/mask exist",
        )
    index = 0
    for name, split in SPLIT_DIRS.items():
        split_dir = found[name]
        for file_name in _pairs(split_dir, dataset, raw_dir):
            image_path = split_dir / "img" / file_name
            mask_path = split_dir / "mask" / file_name
            yield pair_sample(
                image_path,
                mask_path,
                dataset,
                raw_dir,
                colour_mask,
                sample_id=f"sample_{index:06d}",
                group_id=f"{name}/{Path(file_name).stem}",
                official_split=split,
            )
            index += 1
