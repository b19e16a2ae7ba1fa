"""CoCaHis converter: one HDF5 file (`HE/raw`, `GT/GT_majority_vote`, `HE` attributes) -> samples.

Recipe (the paper's `data/preprocess_datasets/CoCaHis.py`): image i is `HE/raw[i]` (the
unnormalised H&E; `sn1`/`sn2` are stain-normalised copies and are not used), cast to uint8 as
the script does (float images in [0, 1] are scaled by 255); mask i is
`GT/GT_majority_vote[i]` cast to uint8: 0 non-cancer, 1 cancer. The script clips to the classes
it finds; here a value outside the card's classes raises instead. Images (1388 x 1037) are not
tiled.

Sample ids are the authors' file stems `f"sample_{i:04d}"` (i = the index in the file), which
their split list confirms (`Data/CoCaHis/images/sample_0058.png`, 0000-0081). The official
split is the per-image attribute `HE.attrs["train_test_split"]` ("train"/"test"); the group is
the patient, `HE.attrs["patient_num"]`, as `patient_<n>`.

The file is `CoCaHis.hdf5` at the top of the raw folder (else the only *.hdf5 / *.h5 below it).
Images are read one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from densebench.data.converters import (
    Sample,
    check_classes,
    check_shapes,
    conversion_error,
    dataset_label,
    redownload_remedy,
    relative,
    to_mask,
)

CONVERTER_VERSION = 1
FILE_NAME = "CoCaHis.hdf5"
IMAGE_KEY, MASK_KEY = "HE/raw", "GT/GT_majority_vote"
SPLIT_ATTR, PATIENT_ATTR = "train_test_split", "patient_num"
SPLITS = ("train", "test")


def _hdf5_path(raw_dir: Path, dataset: str) -> Path:
    """CoCaHis.hdf5 in the raw folder, else the single HDF5 file below it."""
    if (raw_dir / FILE_NAME).is_file():
        return raw_dir / FILE_NAME
    found = sorted({*raw_dir.rglob("*.hdf5"), *raw_dir.rglob("*.h5")})
    if len(found) != 1:
        problem = "no HDF5 file" if not found else f"{len(found)} HDF5 files and no {FILE_NAME}"
        raise conversion_error(
            dataset,
            raw_dir / FILE_NAME,
            f"{problem} in the raw folder",
            f"download {FILE_NAME} from https://cocahis.irb.hr into the raw folder",
        )
    return found[0]


def _text(value: object) -> str:
    """An HDF5 attribute element as text (bytes decoded, whole floats without '.0')."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", "replace").strip()
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _attribute(handle: Any, name: str, count: int, path: Path, dataset: str) -> list[str]:
    """Per-image attribute `name` of group HE, one text value per image."""
    attrs = handle["HE"].attrs
    if name not in attrs:
        raise conversion_error(
            dataset,
            path,
            f"group HE has no attribute {name!r}",
            f"use {FILE_NAME} of the CoCaHis release (HE carries {SPLIT_ATTR}, {PATIENT_ATTR})",
        )
    values = np.atleast_1d(np.asarray(attrs[name], dtype=object))
    if values.size != count:
        raise conversion_error(
            dataset,
            path,
            f"attribute HE.{name} has {values.size} values for {count} images",
            redownload_remedy(path.parent),
        )
    return [_text(v) for v in values.ravel()]


def _splits(handle: Any, count: int, path: Path, dataset: str) -> list[str]:
    """Official split of every image from HE.attrs['train_test_split']."""
    splits = [s.lower() for s in _attribute(handle, SPLIT_ATTR, count, path, dataset)]
    bad = sorted(set(splits) - set(SPLITS))
    if bad:
        raise conversion_error(
            dataset,
            path,
            f"attribute HE.{SPLIT_ATTR} has values {bad}, expected 'train' or 'test'",
            f"use {FILE_NAME} of the CoCaHis release",
        )
    return splits


def _datasets(handle: Any, path: Path, dataset: str) -> tuple[Any, Any]:
    """The image and mask HDF5 datasets, checked for matching image counts."""
    for key in (IMAGE_KEY, MASK_KEY):
        if key not in handle:
            raise conversion_error(
                dataset,
                path,
                f"HDF5 file has no dataset {key!r}",
                f"use {FILE_NAME} of the CoCaHis release",
            )
    images, masks = handle[IMAGE_KEY], handle[MASK_KEY]
    if images.ndim != 4 or images.shape[3] not in (3, 4) or masks.shape[0] != images.shape[0]:
        raise conversion_error(
            dataset,
            path,
            f"{IMAGE_KEY} has shape {images.shape} and {MASK_KEY} {masks.shape}; expected "
            "(N, H, W, 3) images and N masks",
            f"use {FILE_NAME} of the CoCaHis release",
        )
    return images, masks


def _image(images: Any, index: int) -> np.ndarray:
    """Image `index` as (H, W, 3) uint8, cast as the authors' script does."""
    image = np.asarray(images[index])[..., :3]
    if image.dtype != np.uint8:
        image = image * 255 if image.size and image.max() <= 1.0 else image
        image = image.astype(np.uint8)
    return np.ascontiguousarray(image)


def _mask(masks: Any, index: int, num_classes: int, path: Path, dataset: str) -> np.ndarray:
    """Majority-vote mask `index` as uint8 class indices 0..num_classes-1."""
    values = np.asarray(masks[index])
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    problem = f"{MASK_KEY}[{index}] has values {{bad}}, expected 0..{{last}}"
    remedy = f"use {FILE_NAME} of the CoCaHis release (binary majority-vote masks)"
    mask = to_mask(values, dataset, path)
    return check_classes(mask, num_classes, dataset, path, problem, remedy)


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CoCaHis images in file order, ids sample_0000, sample_0001, ..."""
    import h5py

    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    path = _hdf5_path(raw_dir, dataset)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise conversion_error(
            dataset, path, f"cannot open HDF5 file ({exc})", redownload_remedy(raw_dir)
        ) from exc
    with handle:
        images, masks = _datasets(handle, path, dataset)
        count = images.shape[0]
        splits = _splits(handle, count, path, dataset)
        patients = _attribute(handle, PATIENT_ATTR, count, path, dataset)
        num_classes = len(card["classes"])
        for i in range(count):
            try:
                image = _image(images, i)
                mask = _mask(masks, i, num_classes, path, dataset)
            except OSError as exc:
                raise conversion_error(
                    dataset, path, f"cannot read image {i} ({exc})", redownload_remedy(raw_dir)
                ) from exc
            check_shapes(image, mask, dataset, path)
            yield Sample(
                sample_id=f"sample_{i:04d}",
                image=image,
                mask=mask,
                source_file=relative(path, raw_dir),
                group_id=f"patient_{patients[i]}",
                official_split=splits[i],
            )
