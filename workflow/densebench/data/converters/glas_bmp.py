"""GlaS-style converter: `Warwick_QU_Dataset/{train,testA,testB}_<n>.bmp` + `_anno.bmp` -> samples.

Annotation BMPs hold gland instance ids; every pixel with id > 0 is gland, and each id is one
gland of the sample's instances (renumbered 1..K in order of id). If the card has the
classes `benign_gland` and `tumour_gland`, each gland gets the class of its image's grade in
`Grade.csv` (benign / malignant); otherwise the card must have a single `gland` class (the paper's
binary encoding). Official split: train* -> "train", testA*/testB* -> "test". Group: the
`patient ID` column of Grade.csv (the file stem when Grade.csv is absent in binary mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    class_index,
    conversion_error,
    dataset_label,
    read_label,
    relative,
)
from densebench.data.converters._common import (
    WARWICK_IMAGE,
    natural_sorted,
    nested_root,
    object_map,
    read_grades,
    read_pair,
    warwick_annotation,
)

CONVERTER_VERSION = 1
GRADES = {"benign": "benign_gland", "malignant": "tumour_gland"}


def _class_of(card: dict, grade: str | None, dataset: str, path: Path) -> int:
    """Class id of the glands of one image."""
    graded = all(class_index(card, n) is not None for n in GRADES.values())
    if graded:
        if grade not in GRADES:
            raise conversion_error(
                dataset, path, f"unknown grade {grade!r}", "grades must be benign or malignant"
            )
        return int(class_index(card, GRADES[grade]))
    gland = class_index(card, "gland")
    if gland is None:
        raise conversion_error(
            dataset,
            path,
            f"card classes {card.get('classes')} have neither 'gland' nor "
            "'benign_gland'+'tumour_gland'",
            "fix the dataset card's classes",
        )
    return gland


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield GlaS samples in natural file order (testA, testB, train)."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = nested_root(raw_dir, "Warwick_QU_Dataset")
    grade_csv = root / "Grade.csv"
    graded = all(class_index(card, n) is not None for n in GRADES.values())
    if graded and not grade_csv.is_file():
        raise conversion_error(
            dataset, grade_csv, "Grade.csv is missing", "restore Grade.csv from the release"
        )
    grades = read_grades(grade_csv, dataset) if grade_csv.is_file() else None
    images = natural_sorted(p for p in root.glob("*.bmp") if WARWICK_IMAGE.match(p.name))
    if not images:
        raise conversion_error(
            dataset, root, "no train*/testA*/testB* .bmp images", "unpack Warwick_QU_Dataset here"
        )
    for image_path in images:
        stem = image_path.stem
        anno_path, patient, grade = warwick_annotation(image_path, grades, grade_csv, dataset)
        image, labels = read_pair(image_path, anno_path, dataset, raw_dir, read_label)
        anno = labels.mask
        gland = _class_of(card, grade, dataset, grade_csv)
        yield Sample(
            sample_id=f"glas_{stem}",
            image=image,
            mask=np.where(anno > 0, gland, 0).astype(np.uint8),
            source_file=relative(image_path, raw_dir),
            group_id=patient,
            official_split="train" if stem.startswith("train") else "test",
            instances=object_map(anno, anno > 0),
        )
