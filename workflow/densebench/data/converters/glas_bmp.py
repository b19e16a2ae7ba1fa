"""GlaS-style converter: `Warwick_QU_Dataset/{train,testA,testB}_<n>.bmp` + `_anno.bmp` -> samples.

Annotation BMPs hold gland instance ids; every pixel with id > 0 is gland. If the card has the
classes `benign_gland` and `tumour_gland`, each gland gets the class of its image's grade in
`Grade.csv` (benign / malignant); otherwise the card must have a single `gland` class (the paper's
binary encoding). Official split: train* -> "train", testA*/testB* -> "test". Group: the
`patient ID` column of Grade.csv (the file stem when Grade.csv is absent in binary mode).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    check_shapes,
    class_index,
    conversion_error,
    dataset_label,
    natural_key,
    read_label,
    read_rgb,
    relative,
)

CONVERTER_VERSION = 1
IMAGE_RE = re.compile(r"^(train|testA|testB)_?\d+\.bmp$")
GRADES = {"benign": "benign_gland", "malignant": "tumour_gland"}


def _root(raw_dir: Path) -> Path:
    """Dataset root: the Warwick_QU_Dataset/ folder if present, else raw_dir."""
    nested = raw_dir / "Warwick_QU_Dataset"
    return nested if nested.is_dir() else raw_dir


def _read_grades(path: Path, dataset: str) -> dict[str, tuple[str, str]]:
    """Map image name -> (patient id, grade) from GlaS's Grade.csv (values have leading spaces)."""
    with path.open(newline="") as fh:
        rows = [[cell.strip() for cell in row] for row in csv.reader(fh) if row]
    header = [h.lower() for h in rows[0]] if rows else []
    if "name" not in header or "patient id" not in header or "grade (glas)" not in header:
        raise conversion_error(
            dataset,
            path,
            "Grade.csv lacks the columns 'name', 'patient ID', 'grade (GlaS)'",
            "use the Grade.csv of the original Warwick_QU_Dataset release",
        )
    i_name, i_pat, i_grade = (header.index(k) for k in ("name", "patient id", "grade (glas)"))
    return {r[i_name]: (r[i_pat], r[i_grade].lower()) for r in rows[1:]}


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
    root = _root(raw_dir)
    grade_csv = root / "Grade.csv"
    graded = all(class_index(card, n) is not None for n in GRADES.values())
    if graded and not grade_csv.is_file():
        raise conversion_error(
            dataset, grade_csv, "Grade.csv is missing", "restore Grade.csv from the release"
        )
    grades = _read_grades(grade_csv, dataset) if grade_csv.is_file() else None
    images = sorted(
        (p for p in root.glob("*.bmp") if IMAGE_RE.match(p.name)), key=lambda p: natural_key(p.name)
    )
    if not images:
        raise conversion_error(
            dataset, root, "no train*/testA*/testB* .bmp images", "unpack Warwick_QU_Dataset here"
        )
    for image_path in images:
        stem = image_path.stem
        anno_path = image_path.with_name(f"{stem}_anno.bmp")
        if not anno_path.is_file():
            raise conversion_error(
                dataset,
                image_path,
                f"image has no annotation file {anno_path.name}",
                "restore the missing _anno.bmp (re-download the raw data) or remove the image",
            )
        if grades is not None and stem not in grades:
            raise conversion_error(dataset, grade_csv, f"no row for {stem!r}", "add the row")
        patient, grade = grades[stem] if grades is not None else (stem, None)
        image = read_rgb(image_path, dataset, raw_dir)
        anno = read_label(anno_path, dataset, raw_dir)
        check_shapes(image, anno, dataset, anno_path)
        gland = _class_of(card, grade, dataset, grade_csv)
        yield Sample(
            sample_id=f"glas_{stem}",
            image=image,
            mask=np.where(anno > 0, gland, 0).astype(np.uint8),
            source_file=relative(image_path, raw_dir),
            group_id=patient,
            official_split="train" if stem.startswith("train") else "test",
        )
