"""Lizard (Graham et al. 2021) -> samples, as the paper's `Lizard.py` does.

Raw layout: the Warwick zips extract to `Lizard_Images1/*.png`, `Lizard_Images2/*.png` and
`Lizard_Labels/{Labels/*.mat, info.csv}`; the Kaggle mirror (which the authors used) nests each in
a lower-case folder (`lizard_images1/Lizard_Images1/...`). Both are accepted.

Recipe: image -> RGB (alpha dropped); mask = each instance of `inst_map` painted with its `class`
(looked up through the `id` list, first match), instances missing from `id` -> 0 (background):
0 background, 1 neutrophil, 2 epithelial, 3 lymphocyte, 4 plasma, 5 eosinophil, 6 connective.
Painted values outside the classes are refused. Instances: the nuclei of `inst_map` on the
painted pixels (one per (id, class), renumbered 1..K; instances the `id` list lacks are
background in the mask and so no nucleus). Sample id = the image's original stem
(`consep_1`, `glas_12`, ...), as the authors keep file names. Samples are in natural stem order.

Split: `info.csv` gives each image a fold (`Split` 1, 2, 3) of the Lizard paper's 3-fold
cross-validation; it is mapped 1 -> "train", 2 -> "val", 3 -> "test" (torch-em's convention;
uncertain, the folds are not a train/test split). Group: the image stem (each Lizard image is its
own source region; patients are not given).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    check_classes,
    conversion_error,
    dataset_label,
    load_mat_key,
    natural_key,
    redownload_remedy,
    require_mask,
)
from densebench.data.converters._common import Labels, nucleus_instances, pair_sample

CONVERTER_VERSION = 1
IMAGE_DIRS = ("Lizard_Images1", "Lizard_Images2")
LABEL_DIR = "Lizard_Labels"
FOLD_SPLITS = {"1": "train", "2": "val", "3": "test"}
ARCHIVES = "lizard_images1.zip, lizard_images2.zip and lizard_labels.zip"
MISSING_LABELS = "the missing .mat file (re-download lizard_labels.zip)"


def locate(raw_dir: Path, name: str, dataset: str) -> Path:
    """A release folder: `<raw>/<name>` (Warwick) or `<raw>/<name lower>/<name>` (Kaggle)."""
    for path in (raw_dir / name, raw_dir / name.lower() / name):
        if path.is_dir():
            return path
    raise conversion_error(
        dataset,
        raw_dir / name,
        "folder is missing",
        f"unpack {ARCHIVES} into {raw_dir} keeping their folders",
    )


def read_folds(path: Path, dataset: str, raw_dir: Path) -> dict[str, str]:
    """Map image stem -> official split from info.csv (columns Filename, Source, Split)."""
    if not path.is_file():
        raise conversion_error(dataset, path, "file is missing", redownload_remedy(raw_dir))
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"Filename", "Split"} <= set(rows[0]):
        raise conversion_error(
            dataset,
            path,
            "info.csv lacks the columns Filename and Split",
            redownload_remedy(raw_dir),
        )
    folds = {}
    for row in rows:
        fold = row["Split"].strip()
        if fold not in FOLD_SPLITS:
            raise conversion_error(
                dataset,
                path,
                f"image {row['Filename']!r} has Split {fold!r}, expected 1, 2 or 3",
                redownload_remedy(raw_dir),
            )
        folds[row["Filename"].strip().removesuffix(".png")] = FOLD_SPLITS[fold]
    return folds


def integer_variable(path: Path, key: str, dataset: str, raw_dir: Path) -> np.ndarray:
    """One .mat variable as int64, refusing non-numeric, non-integer or negative entries."""
    values = load_mat_key(path, key, dataset, raw_dir)
    if values.dtype.kind not in "iubf" or (
        values.size
        and (values.min() < 0 or (values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0)))
    ):
        raise conversion_error(
            dataset,
            path,
            f"{key} holds values that are not non-negative integers",
            redownload_remedy(raw_dir),
        )
    return values.astype(np.int64)


def class_mask(path: Path, dataset: str, raw_dir: Path, num_classes: int) -> Labels:
    """Paint every instance of `inst_map` with its `class` (via `id`); unknown ids -> 0; with
    the painted nuclei as instances."""
    inst, ids, types = (
        integer_variable(path, k, dataset, raw_dir) for k in ("inst_map", "id", "class")
    )
    ids, types = ids.reshape(-1), types.reshape(-1)
    if inst.ndim != 2 or ids.shape != types.shape:
        raise conversion_error(
            dataset,
            path,
            f"inst_map {inst.shape}, id {ids.shape} and class {types.shape} do not fit together "
            "(expected a 2-D map and one class per id)",
            redownload_remedy(raw_dir),
        )
    unique_ids, first = np.unique(ids, return_index=True)
    lut = np.zeros(max(int(inst.max(initial=0)), int(unique_ids.max(initial=0))) + 1, np.int64)
    lut[unique_ids] = types[first]
    lut[0] = 0
    problem = "class values {bad} are outside the classes 0..{last}"
    mask = check_classes(lut[inst], num_classes, dataset, path, problem, redownload_remedy(raw_dir))
    mask = mask.astype(np.uint8)
    return Labels(mask, nucleus_instances(inst, mask, 0))


def list_images(raw_dir: Path, dataset: str) -> list[Path]:
    """All images of both image folders, in natural stem order; stems must be unique."""
    images = [p for name in IMAGE_DIRS for p in locate(raw_dir, name, dataset).glob("*.png")]
    stems = [p.stem for p in images]
    duplicate = next((p for p in images if stems.count(p.stem) > 1), None)
    if duplicate is not None:
        raise conversion_error(
            dataset,
            duplicate,
            f"image name {duplicate.stem!r} occurs in both image folders",
            redownload_remedy(raw_dir),
        )
    return sorted(images, key=lambda p: natural_key(p.stem))


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield Lizard samples in natural order of their original names."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    labels = locate(raw_dir, LABEL_DIR, dataset)
    folds = read_folds(labels / "info.csv", dataset, raw_dir)
    read_mask = partial(class_mask, num_classes=len(card["classes"]))
    for image_path in list_images(raw_dir, dataset):
        label_path = labels / "Labels" / f"{image_path.stem}.mat"
        require_mask(image_path, label_path, dataset, raw_dir, "label", MISSING_LABELS)
        if image_path.stem not in folds:
            raise conversion_error(
                dataset,
                labels / "info.csv",
                f"no row for image {image_path.stem!r}",
                redownload_remedy(raw_dir),
            )
        split = folds[image_path.stem]
        yield pair_sample(image_path, label_path, dataset, raw_dir, read_mask, official_split=split)
