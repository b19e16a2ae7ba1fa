"""CoNIC2022 converter: `images.npy` + `labels.npy` (+ `patch_info.csv`) -> one sample per patch.

Recipe (the paper's `data/preprocess_datasets/CoNIC2022.py`): the image is `images[i]` and the
mask is the class channel `labels[i, :, :, 1]` cast to uint8 (0 background, 1 neutrophil,
2 epithelial, 3 lymphocyte, 4 plasma, 5 eosinophil, 6 connective; the script asserts 0..6, so
any other value raises here). Patches are already 256 x 256: no tiling. Instances: the
instance channel `labels[i, :, :, 0]`, one nucleus per (id, class) on the classed pixels,
renumbered 1..K.

Sample ids are the authors' file stems `f"{i:04d}"` (i = the patch index in the arrays), which
their split list confirms (`Data/CoNIC2022/dataset/images/0577.png`, 0000-4980). The group is
the Lizard source image of a patch: the `patch_info.csv` entry up to its "-" (e.g.
`consep_1-0007` -> `consep_1`), as in hover_net's `conic` split, so seeded splits keep the
patches of one image together. The challenge test set is hidden: no official split.

The release is a Google Drive folder (`CoNIC Challenge Train`); it may sit in the raw folder
itself or in a sub-folder up to two levels down. The arrays (~2 GB) are memory-mapped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    conversion_error,
    dataset_label,
    redownload_remedy,
    relative,
    to_mask,
)
from densebench.data.converters._common import (
    instance_ids,
    load_npy,
    nucleus_instances,
    uint8_patch,
)

CONVERTER_VERSION = 1
IMAGES, LABELS, PATCH_INFO = "images.npy", "labels.npy", "patch_info.csv"
INSTANCE_CHANNEL, CLASS_CHANNEL = 0, 1
IMAGE_REMEDY = "use images.npy of the CoNIC release (8-bit RGB)"


def _root(raw_dir: Path, dataset: str) -> Path:
    """The folder holding images.npy: raw_dir or one folder up to two levels below it."""
    candidates = [raw_dir, *sorted(raw_dir.glob("*/")), *sorted(raw_dir.glob("*/*/"))]
    found = [d for d in candidates if (d / IMAGES).is_file()]
    if not found:
        raise conversion_error(
            dataset,
            raw_dir,
            f"no {IMAGES} in the raw folder or two levels below it",
            "download the CoNIC challenge folder (images.npy, labels.npy, patch_info.csv) "
            "into the raw folder",
        )
    if len(found) > 1:
        raise conversion_error(
            dataset,
            raw_dir,
            f"several {IMAGES} files: {', '.join(relative(d / IMAGES, raw_dir) for d in found)}",
            "keep a single copy of the CoNIC release in the raw folder",
        )
    return found[0]


def _check_arrays(images: np.ndarray, labels: np.ndarray, root: Path, dataset: str) -> None:
    """Raise unless images is (N, H, W, 3) and labels (N, H, W, 2) with the same N, H, W."""
    if images.ndim != 4 or images.shape[3] != 3:
        raise conversion_error(
            dataset,
            root / IMAGES,
            f"array has shape {images.shape}, expected (N, H, W, 3)",
            "use images.npy of the CoNIC release",
        )
    if labels.ndim != 4 or labels.shape[3] != 2 or labels.shape[:3] != images.shape[:3]:
        raise conversion_error(
            dataset,
            root / LABELS,
            f"array has shape {labels.shape}, expected {(*images.shape[:3], 2)} "
            "(instance map, class map) to match images.npy",
            "use labels.npy of the same CoNIC release as images.npy",
        )


def _groups(root: Path, count: int, dataset: str, raw_dir: Path) -> list[str]:
    """Source image of every patch from patch_info.csv (name before the first '-')."""
    path = root / PATCH_INFO
    if not path.is_file():
        raise conversion_error(
            dataset,
            path,
            "file is missing (it names the source image of every patch)",
            redownload_remedy(raw_dir),
        )
    with path.open(newline="") as fh:
        rows = [row for row in csv.reader(fh) if row]
    names = [row[0].strip() for row in rows[1:]]
    if len(names) != count:
        raise conversion_error(
            dataset,
            path,
            f"lists {len(names)} patches but images.npy holds {count}",
            "use patch_info.csv of the same CoNIC release as the arrays",
        )
    return [name.split("-")[0] for name in names]


def _mask(labels: np.ndarray, index: int, num_classes: int, path: Path, dataset: str) -> np.ndarray:
    """Class map of patch `index` as uint8, refusing classes outside 0..num_classes-1."""
    values = np.asarray(labels[index, :, :, CLASS_CHANNEL])
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise conversion_error(
            dataset,
            path,
            f"patch {index}: class map values {np.unique(values).tolist()} are not in "
            f"0..{num_classes - 1}",
            "use labels.npy of the CoNIC release (channel 1 = class 0..6)",
        )
    return to_mask(values, dataset, path)


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CoNIC patches in array order, ids 0000, 0001, ..."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = _root(raw_dir, dataset)
    images = load_npy(root / IMAGES, dataset, raw_dir)
    labels = load_npy(root / LABELS, dataset, raw_dir)
    _check_arrays(images, labels, root, dataset)
    groups = _groups(root, images.shape[0], dataset, raw_dir)
    num_classes = len(card["classes"])
    for i in range(images.shape[0]):
        image = uint8_patch(images, i, root / IMAGES, dataset, IMAGE_REMEDY)
        mask = _mask(labels, i, num_classes, root / LABELS, dataset)
        ids = instance_ids(labels[i, :, :, INSTANCE_CHANNEL], dataset, root / LABELS, raw_dir)
        yield Sample(
            sample_id=f"{i:04d}",
            image=image,
            mask=mask,
            source_file=relative(root / IMAGES, raw_dir),
            group_id=groups[i],
            official_split=None,
            instances=nucleus_instances(ids, mask, 0),
        )
