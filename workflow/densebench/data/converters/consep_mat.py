"""CoNSeP-style converter: `{Train,Test}/Images/*.png` + `Labels/*.mat` (`type_map`) -> samples.

The mask is the raw `type_map` (no class merging, as the paper's CoNSeP script does). The
official split is the folder (Train -> "train", Test -> "test"). The group (patient) comes from an
optional `patients.csv` (columns `stem,patient_id`) at the dataset root, else the file stem.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import (
    Sample,
    check_shapes,
    conversion_error,
    dataset_label,
    load_mat_key,
    natural_key,
    read_rgb,
    relative,
    to_mask,
)

CONVERTER_VERSION = 1
SPLIT_DIRS = {"Train": "train", "Test": "test"}


def _root(raw_dir: Path) -> Path:
    """Dataset root: raw_dir itself or a nested CoNSeP/ folder (as in the release zip)."""
    nested = raw_dir / "CoNSeP"
    return nested if nested.is_dir() and not (raw_dir / "Train").is_dir() else raw_dir


def _patients(root: Path, dataset: str) -> dict[str, str] | None:
    """Map file stem -> patient id from patients.csv, or None if absent."""
    path = root / "patients.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"stem", "patient_id"} <= set(rows[0]):
        raise conversion_error(
            dataset, path, "patients.csv lacks columns 'stem' and 'patient_id'", "fix the header"
        )
    return {r["stem"].strip(): r["patient_id"].strip() for r in rows}


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CoNSeP samples, Train before Test, in natural file order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = _root(raw_dir)
    split_dirs = [d for d in SPLIT_DIRS if (root / d / "Images").is_dir()]
    if not split_dirs:
        raise conversion_error(
            dataset,
            root,
            "no Train/Images or Test/Images folder",
            "unpack the CoNSeP release so that <raw>/Train/Images and <raw>/Test/Images exist",
        )
    patients = _patients(root, dataset)
    for split_dir in split_dirs:
        images = sorted(
            (root / split_dir / "Images").glob("*.png"), key=lambda p: natural_key(p.name)
        )
        for image_path in images:
            label_path = root / split_dir / "Labels" / f"{image_path.stem}.mat"
            if not label_path.is_file():
                raise conversion_error(
                    dataset,
                    image_path,
                    f"image has no label file {relative(label_path, raw_dir)}",
                    "restore the missing .mat file (re-download the raw data) or remove the image",
                )
            image = read_rgb(image_path, dataset, raw_dir)
            mask = to_mask(
                load_mat_key(label_path, "type_map", dataset, raw_dir), dataset, label_path
            )
            check_shapes(image, mask, dataset, label_path)
            stem = image_path.stem
            if patients is not None and stem not in patients:
                raise conversion_error(
                    dataset, root / "patients.csv", f"no patient for image {stem!r}", "add a row"
                )
            yield Sample(
                sample_id=f"consep_{split_dir}_{stem}",
                image=image,
                mask=mask,
                source_file=relative(image_path, raw_dir),
                group_id=patients[stem] if patients is not None else stem,
                official_split=SPLIT_DIRS[split_dir],
            )
