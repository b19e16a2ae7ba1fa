"""GlaS (MICCAI 2015) converter for the real release: gland (1) vs background (0).

Two raw layouts are read (the first one found wins):

* DatasetNinja's Supervisely export, the authors' source: `{train,test_a,test_b}/img/<name>.bmp`
  + `ann/<name>.bmp.json`, each gland a `bitmap` object (base64 of a zlib-compressed PNG placed
  at `origin` [x, y]) of class `gland`, the patient in the image tag `patient id`. Recipe of the
  authors' `GlaS.py`: the union of all `gland` bitmaps -> 1. Geometries other than bitmap, an
  annotation size that differs from the image and a missing annotation are errors here (their
  script skips the object or writes an empty mask).
* The Warwick release (`Warwick QU Dataset (Released 2016_07_08)/` or Kaggle's
  `Warwick_QU_Dataset/`): `{train,testA,testB}_<n>.bmp` + `_anno.bmp` (gland instance ids,
  `> 0` -> 1), patients from `Grade.csv` (`_common.warwick_annotation`, shared with `glas_bmp`).

Instances: each `gland` bitmap object is one gland (a later object overwrites an earlier one
where they overlap), each `_anno.bmp` id one gland; renumbered 1..K in object (id) order.

Sample id = the original file stem (`train_12`, `testA_3`, `testB_20`), the names of the authors'
`GlaS.json`. Official split: train -> "train", testA/testB -> "test". Group = patient id (the
stem where the layout carries none).
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from densebench.data.converters import (
    Sample,
    check_shapes,
    conversion_error,
    dataset_label,
    natural_key,
    read_rgb,
    redownload_remedy,
    relative,
    require_mask,
)
from densebench.data.converters._common import (
    MISSING_ANNOTATION,
    WARWICK_IMAGE,
    files,
    find_root,
    object_ids,
    object_map,
    read_grades,
    required_class,
    warwick_annotation,
)

CONVERTER_VERSION = 1
SUPERVISELY_SPLITS = {"train": "train", "test_a": "test", "test_b": "test"}
IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
GLAND = "gland"


class _Entry(NamedTuple):
    """One raw image with its label file, split and patient."""

    stem: str
    split: str
    image: Path
    label: Path
    patient: str | None


def _is_supervisely(folder: Path) -> bool:
    """Whether a folder holds Supervisely dataset folders (train/img, test_a/img, ...)."""
    return any((folder / split / "img").is_dir() for split in SUPERVISELY_SPLITS)


def _is_warwick(folder: Path) -> bool:
    """Whether a folder holds the Warwick BMPs (train_1.bmp, testA_1.bmp, ...)."""
    return any(WARWICK_IMAGE.match(p.name) for p in files(folder, (".bmp",)))


def _supervisely_entries(root: Path, dataset: str, raw_dir: Path) -> list[_Entry]:
    """Images of the Supervisely export with their annotation JSON (which must exist)."""
    entries = []
    for split_dir, split in SUPERVISELY_SPLITS.items():
        for image_path in files(root / split_dir / "img", IMAGE_SUFFIXES):
            ann_path = root / split_dir / "ann" / f"{image_path.name}.json"
            require_mask(image_path, ann_path, dataset, raw_dir, "annotation", MISSING_ANNOTATION)
            entries.append(_Entry(image_path.stem, split, image_path, ann_path, None))
    return entries


def _warwick_entries(root: Path, dataset: str, raw_dir: Path) -> list[_Entry]:
    """Images of the Warwick release with their `_anno.bmp` and Grade.csv patient."""
    grade_csv = root / "Grade.csv"
    grades = read_grades(grade_csv, dataset) if grade_csv.is_file() else None
    entries = []
    for image_path in files(root, (".bmp",)):
        if WARWICK_IMAGE.match(image_path.name):
            anno_path, patient, _ = warwick_annotation(image_path, grades, grade_csv, dataset)
            split = "train" if image_path.stem.startswith("train") else "test"
            entries.append(_Entry(image_path.stem, split, image_path, anno_path, patient))
    return entries


def _load_json(path: Path, dataset: str, raw_dir: Path) -> dict:
    """Parse a Supervisely annotation file."""
    try:
        ann = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise conversion_error(
            dataset, path, f"cannot parse annotation JSON ({exc})", redownload_remedy(raw_dir)
        ) from exc
    if not isinstance(ann, dict):
        raise conversion_error(
            dataset, path, "annotation JSON is not an object", redownload_remedy(raw_dir)
        )
    return ann


def decode_bitmap(data: str) -> np.ndarray:
    """Supervisely bitmap (base64 of zlib-compressed PNG) -> boolean array; alpha if present."""
    from PIL import Image

    with Image.open(io.BytesIO(zlib.decompress(base64.b64decode(data)))) as im:
        im.load()
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            return np.asarray(im.convert("RGBA"))[..., 3] > 0
        return np.asarray(im.convert("L")) > 0


def _gland_objects(ann: dict, shape: tuple[int, int], path: Path, dataset: str) -> np.ndarray:
    """The annotation's `gland` bitmaps as an (H, W) int64 map: object k (1-based, in file
    order) where its bitmap is set, a later object over an earlier one; 0 elsewhere. Its
    non-zero pixels are the union of the bitmaps."""
    size = ann.get("size") or {}
    if (size.get("height", shape[0]), size.get("width", shape[1])) != shape:
        raise conversion_error(
            dataset,
            path,
            f"annotation size {size.get('height')}x{size.get('width')} differs from the "
            f"image's {shape[0]}x{shape[1]}",
            "the image and annotation do not belong together; re-download the raw data",
        )
    objects = np.zeros(shape, np.int64)
    glands = (o for o in ann.get("objects", []) if str(o.get("classTitle", "")).lower() == GLAND)
    for number, obj in enumerate(glands, start=1):
        if obj.get("geometryType") != "bitmap":
            raise conversion_error(
                dataset,
                path,
                f"gland object has geometry {obj.get('geometryType')!r}, expected 'bitmap'",
                "use DatasetNinja's Supervisely export of GlaS, whose glands are bitmaps",
            )
        try:
            piece = decode_bitmap(obj["bitmap"]["data"])
            x0, y0 = (int(v) for v in obj["bitmap"]["origin"])
            if x0 < 0 or y0 < 0:
                raise ValueError(f"negative origin {[x0, y0]}")
        except Exception as exc:  # base64, zlib and PIL raise many types
            raise conversion_error(
                dataset, path, f"cannot decode a gland bitmap ({exc})", "re-download the raw data"
            ) from exc
        h = max(0, min(piece.shape[0], shape[0] - y0))
        w = max(0, min(piece.shape[1], shape[1] - x0))
        window = objects[y0 : y0 + h, x0 : x0 + w]
        window[piece[:h, :w]] = number
    return objects


def _patient(ann: dict) -> str | None:
    """Value of the Supervisely image tag 'patient id', if any."""
    for tag in ann.get("tags", []):
        if tag.get("name") == "patient id" and tag.get("value") is not None:
            return str(tag["value"])
    return None


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield GlaS samples in natural order of their stems (testA, testB, train)."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    gland = required_class(card, GLAND, dataset, raw_dir)
    root = find_root(raw_dir, _is_supervisely)
    if root is not None:
        entries = _supervisely_entries(root, dataset, raw_dir)
    elif (root := find_root(raw_dir, _is_warwick, depth=2)) is not None:
        entries = _warwick_entries(root, dataset, raw_dir)
    else:
        raise conversion_error(
            dataset,
            raw_dir,
            "neither Supervisely folders (train/img, test_a/img, test_b/img) nor Warwick BMPs "
            "(train_1.bmp, ...)",
            "unpack DatasetNinja's GlaS archive (or the Warwick QU release) here",
        )
    for entry in sorted(entries, key=lambda e: natural_key(e.stem)):
        image = read_rgb(entry.image, dataset, raw_dir)
        patient = entry.patient
        if entry.label.suffix == ".json":
            ann = _load_json(entry.label, dataset, raw_dir)
            objects = _gland_objects(ann, image.shape[:2], entry.label, dataset)
            patient = _patient(ann)
        else:
            objects = object_ids(entry.label, dataset, raw_dir)
            check_shapes(image, objects, dataset, entry.label)
        fg = objects != 0
        yield Sample(
            sample_id=entry.stem,
            image=image,
            mask=np.where(fg, gland, 0).astype(np.uint8),
            source_file=relative(entry.image, raw_dir),
            group_id=patient or entry.stem,
            official_split=entry.split,
            instances=object_map(objects, fg),
        )
