"""CoNSeP-style converter: `{Train,Test}/Images/*.png` + `Labels/*.mat` (`type_map`) -> samples.

The mask is the raw `type_map` (no class merging, as the paper's CoNSeP script does); the
instances are the nuclei of the `inst_map` (`_common.mat_nuclei`; none without one). The
official split is the folder (Train -> "train", Test -> "test"). The group (patient) comes from an
optional `patients.csv` (columns `stem,patient_id`) at the dataset root, else the file stem.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import (
    Sample,
    conversion_error,
    dataset_label,
    load_mat_key,
    relative,
    require_mask,
    to_mask,
)
from densebench.data.converters._common import (
    MISSING_MAT,
    Labels,
    mat_nuclei,
    natural_sorted,
    nested_root,
    read_pair,
)

CONVERTER_VERSION = 1
SPLIT_DIRS = {"Train": "train", "Test": "test"}


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


def _type_map(path: Path, dataset: str, raw_dir: Path) -> Labels:
    """The raw `type_map` of a label file as a uint8 mask (no class merging), with the nuclei
    of its `inst_map`."""
    mask = to_mask(load_mat_key(path, "type_map", dataset, raw_dir), dataset, path)
    return Labels(mask, mat_nuclei(path, mask, dataset, raw_dir))


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CoNSeP samples, Train before Test, in natural file order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = nested_root(raw_dir, "CoNSeP", unless="Train")  # the release zip's nested folder
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
        for image_path in natural_sorted((root / split_dir / "Images").glob("*.png")):
            label_path = root / split_dir / "Labels" / f"{image_path.stem}.mat"
            require_mask(image_path, label_path, dataset, raw_dir, "label", MISSING_MAT)
            image, labels = read_pair(image_path, label_path, dataset, raw_dir, _type_map)
            stem = image_path.stem
            if patients is not None and stem not in patients:
                raise conversion_error(
                    dataset, root / "patients.csv", f"no patient for image {stem!r}", "add a row"
                )
            yield Sample(
                sample_id=f"consep_{split_dir}_{stem}",
                image=image,
                mask=labels.mask,
                source_file=relative(image_path, raw_dir),
                group_id=patients[stem] if patients is not None else stem,
                official_split=SPLIT_DIRS[split_dir],
                instances=labels.instances,
            )
