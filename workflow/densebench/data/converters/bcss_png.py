"""BCSS-style converter: `rgbs_colorNormalized/<name>.png` + `masks/<name>.png` -> samples.

Mask pixel values are BCSS ground-truth codes and are used directly as class indices; when
`meta/gtruth_codes.tsv` is present its labels must match the card's class names code by code.
The group is the TCGA case (`TCGA-<site>-<participant>`) parsed from the file name; there is no
official split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample, conversion_error, dataset_label
from densebench.data.converters._common import bcss_samples

CONVERTER_VERSION = 1
IMAGE_DIRS = ("rgbs_colorNormalized", "images")


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield BCSS samples in natural file-name order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    image_dir = next((raw_dir / d for d in IMAGE_DIRS if (raw_dir / d).is_dir()), None)
    if image_dir is None:
        raise conversion_error(
            dataset,
            raw_dir,
            f"no image folder ({' or '.join(IMAGE_DIRS)})",
            "unpack the BCSS release so that <raw>/rgbs_colorNormalized and <raw>/masks exist",
        )
    yield from bcss_samples(
        raw_dir,
        dataset,
        card,
        raw_dir,
        image_dir,
        name="bcss_{stem}",
        split=lambda _stem: None,
        missing="the missing mask (re-download the raw data)",
    )
