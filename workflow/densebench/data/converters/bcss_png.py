"""BCSS-style converter: `rgbs_colorNormalized/<name>.png` + `masks/<name>.png` -> samples.

Mask pixel values are BCSS ground-truth codes and are used directly as class indices; when
`meta/gtruth_codes.tsv` is present its labels must match the card's class names code by code.
The group is the TCGA case (`TCGA-<site>-<participant>`) parsed from the file name; there is no
official split.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import (
    Sample,
    check_shapes,
    conversion_error,
    dataset_label,
    natural_key,
    read_label,
    read_rgb,
    relative,
    require_mask,
    to_mask,
)

CONVERTER_VERSION = 1
IMAGE_DIRS = ("rgbs_colorNormalized", "images")
CASE_RE = re.compile(r"^(TCGA-[A-Za-z0-9]{2}-[A-Za-z0-9]{4})")


def _check_codes(root: Path, card: dict, dataset: str) -> None:
    """Raise if meta/gtruth_codes.tsv disagrees with the card's classes."""
    path = root / "meta" / "gtruth_codes.tsv"
    if not path.is_file():
        return
    classes = list(card.get("classes", []))
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            label, code = row.get("label", "").strip(), int(row.get("GT_code", -1))
            if not (0 <= code < len(classes)) or classes[code] != label:
                raise conversion_error(
                    dataset,
                    path,
                    f"GT code {code} is {label!r} but the card's class {code} is "
                    f"{classes[code] if 0 <= code < len(classes) else 'missing'!r}",
                    "make the card's classes list the GT codes in order",
                )


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
    _check_codes(raw_dir, card, dataset)
    for image_path in sorted(image_dir.glob("*.png"), key=lambda p: natural_key(p.name)):
        mask_path = raw_dir / "masks" / image_path.name
        require_mask(image_path, mask_path, dataset, raw_dir)
        image = read_rgb(image_path, dataset, raw_dir)
        mask = to_mask(read_label(mask_path, dataset, raw_dir), dataset, mask_path)
        check_shapes(image, mask, dataset, mask_path)
        case = CASE_RE.match(image_path.stem)
        yield Sample(
            sample_id=f"bcss_{image_path.stem}",
            image=image,
            mask=mask,
            source_file=relative(image_path, raw_dir),
            group_id=case.group(1) if case else image_path.stem,
            official_split=None,
        )
