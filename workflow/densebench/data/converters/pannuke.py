"""PanNuke converter: `Fold k/images/foldk/images.npy` + `Fold k/masks/foldk/masks.npy` -> samples.

Recipe (the paper's `data/preprocess_datasets/PanNuke.py`): folds 1, 2, 3 in that order; the
image is `images[i]` cast to uint8 (the release stores float64 0..255); the mask is
`argmax(masks[i], axis=-1)` over the 6 channels (0 neoplastic, 1 inflammatory, 2 connective,
3 dead, 4 epithelial hold instance ids; 5 = binary background), so 5 = background. Replicated
as is, including its quirks: where two type channels overlap the larger instance id wins, and a
pixel with no channel set becomes 0 (neoplastic).

Instances: the per-type instance ids, each pixel taking the id of the channel the argmax picked
(so a nucleus has the one class its pixels show); one nucleus per (id, type), renumbered 1..K.
Pixels with no channel set belong to no nucleus (though the mask calls them neoplastic).

Sample ids are the authors' file stems: one running index over the three folds, `f"{n:05d}"`
(00000-07900), which their split list confirms (`Data/PanNuke/images/06876.png`). The official
split is the common fold protocol: fold 1 -> train, fold 2 -> val, fold 3 -> test. The release
names no patient or slide, so each patch is its own group.

The fold is read from the path (`Fold 1`, `fold1`, `Fold1`, `fold_1`: any case; the first path
component that names a fold counts), because the inner folders' casing differs between sources.
The arrays (masks are ~8 GB per fold as float64) are memory-mapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    conversion_error,
    dataset_label,
    relative,
    to_mask,
)
from densebench.data.converters._common import load_npy, nucleus_instances, uint8_patch

CONVERTER_VERSION = 1
IMAGES, MASKS = "images.npy", "masks.npy"
CHANNELS = 6
FOLD_RE = re.compile(r"^fold[\s_]*(\d+)$", re.IGNORECASE)
OFFICIAL = {1: "train", 2: "val", 3: "test"}
IMAGE_REMEDY = "use images.npy of the PanNuke release"


def _fold_of(path: Path, raw_dir: Path, dataset: str) -> int:
    """Fold number named by the outermost path component like 'Fold 1' or 'fold1'."""
    for part in path.relative_to(raw_dir).parts[:-1]:
        match = FOLD_RE.match(part)
        if match:
            return int(match.group(1))
    raise conversion_error(
        dataset,
        path,
        "no folder on its path names a fold ('Fold 1', 'fold1', ...)",
        "unpack fold_1.zip, fold_2.zip and fold_3.zip into the raw folder as released",
    )


def _find(raw_dir: Path, name: str, dataset: str) -> dict[int, Path]:
    """Map fold number -> the one file `name` of that fold."""
    found: dict[int, Path] = {}
    for path in sorted(raw_dir.rglob(name)):
        fold = _fold_of(path, raw_dir, dataset)
        if fold in found:
            raise conversion_error(
                dataset,
                path,
                f"fold {fold} has a second {name} (also {relative(found[fold], raw_dir)})",
                "keep one copy of each PanNuke fold in the raw folder",
            )
        found[fold] = path
    return found


def _folds(raw_dir: Path, dataset: str) -> list[tuple[int, Path, Path]]:
    """(fold, images.npy, masks.npy) for every fold, in fold order."""
    images, masks = _find(raw_dir, IMAGES, dataset), _find(raw_dir, MASKS, dataset)
    if not images:
        raise conversion_error(
            dataset,
            raw_dir,
            f"no {IMAGES} below the raw folder",
            "unpack fold_1.zip, fold_2.zip and fold_3.zip into the raw folder",
        )
    for fold, path in sorted(images.items()):
        if fold not in OFFICIAL:
            raise conversion_error(
                dataset, path, f"fold {fold} is not one of 1, 2, 3", "use the PanNuke release"
            )
        if fold not in masks:
            raise conversion_error(
                dataset,
                path,
                f"fold {fold} has images but no {MASKS}",
                f"restore Fold {fold}/masks/fold{fold}/{MASKS} (re-download fold_{fold}.zip)",
            )
    for fold, path in masks.items():
        if fold not in images:
            raise conversion_error(
                dataset,
                path,
                f"fold {fold} has masks but no {IMAGES}",
                f"restore Fold {fold}/images/fold{fold}/{IMAGES} (re-download fold_{fold}.zip)",
            )
    return [(fold, images[fold], masks[fold]) for fold in sorted(images)]


def _check_arrays(
    images: np.ndarray, masks: np.ndarray, image_path: Path, mask_path: Path, dataset: str
) -> None:
    """Raise unless images is (N, H, W, 3) and masks (N, H, W, 6) with the same N, H, W."""
    if images.ndim != 4 or images.shape[3] != 3:
        raise conversion_error(
            dataset,
            image_path,
            f"array has shape {images.shape}, expected (N, H, W, 3)",
            "use images.npy of the PanNuke release",
        )
    if masks.ndim != 4 or masks.shape[3] != CHANNELS or masks.shape[:3] != images.shape[:3]:
        raise conversion_error(
            dataset,
            mask_path,
            f"array has shape {masks.shape}, expected {(*images.shape[:3], CHANNELS)} "
            "(5 type channels + background) to match images.npy",
            "use masks.npy of the same PanNuke fold as images.npy",
        )


def semantic_mask(channels: np.ndarray) -> np.ndarray:
    """The paper's PanNuke mask: argmax over the 6 channels (5 = background)."""
    return np.argmax(np.asarray(channels), axis=-1).astype(np.uint8)


def instances(channels: np.ndarray, mask: np.ndarray, path: Path, dataset: str) -> np.ndarray:
    """The nuclei of a patch: at each pixel the instance id of the type channel `mask` names
    (none on background 5), one nucleus per (id, type)."""
    types = np.asarray(channels)[..., : CHANNELS - 1]
    chosen = np.minimum(mask, CHANNELS - 2).astype(np.intp)[..., None]
    ids = np.take_along_axis(types, chosen, axis=-1)[..., 0]
    ids = np.where(mask == CHANNELS - 1, 0, ids)
    if ids.size and (ids.min() < 0 or not np.all(np.mod(ids, 1) == 0)):
        raise conversion_error(
            dataset,
            path,
            "type channels hold instance ids that are not non-negative integers",
            "use masks.npy of the PanNuke release",
        )
    return nucleus_instances(ids.astype(np.int64), mask, CHANNELS - 1)


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield PanNuke patches fold by fold, ids 00000, 00001, ... running across folds."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    index = 0
    for fold, image_path, mask_path in _folds(raw_dir, dataset):
        images = load_npy(image_path, dataset, raw_dir)
        masks = load_npy(mask_path, dataset, raw_dir)
        _check_arrays(images, masks, image_path, mask_path, dataset)
        for i in range(images.shape[0]):
            sample_id = f"{index:05d}"
            channels = np.asarray(masks[i])
            mask = to_mask(semantic_mask(channels), dataset, mask_path)
            yield Sample(
                sample_id=sample_id,
                image=uint8_patch(images, i, image_path, dataset, IMAGE_REMEDY, refuse_nan=True),
                mask=mask,
                source_file=relative(image_path, raw_dir),
                group_id=sample_id,
                official_split=OFFICIAL[fold],
                instances=instances(channels, mask, mask_path, dataset),
            )
            index += 1
