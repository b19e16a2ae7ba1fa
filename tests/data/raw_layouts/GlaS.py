"""GlaS as DatasetNinja's Supervisely export unpacks (the authors' source).

`meta.json` + `{train,test_a,test_b}/img/<name>.bmp` + `ann/<name>.bmp.json`; every gland is a
`bitmap` object (base64 of a zlib-compressed palette PNG, index 1 = gland, index 0 transparent,
as Supervisely writes it) placed at `origin` [x, y]; the image tags carry `patient id` and the
grade. Five images (2 train, 2 testA, 1 testB) of 64-96 px from three patients. Whether the real
tar wraps these in a project folder is not known; the converter searches up to three levels.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.data.raw_layouts import tinted_noise

TINT = (200, 120, 180)  # mean RGB of the images
IMAGES = {  # split folder -> (stem, height, width, patient, grade)
    "train": [("train_1", 72, 96, 1, "benign"), ("train_2", 64, 80, 2, "malignant")],
    "test_a": [("testA_1", 64, 88, 1, "benign"), ("testA_2", 72, 72, 3, "malignant")],
    "test_b": [("testB_1", 64, 64, 2, "malignant")],
}
KNOWN = {"sample": "train_1", "class": 1, "glands": [(5, 13, 10, 22), (30, 50, 40, 70)]}
"""A hand-made pattern: the glands of train_1 as (y0, y1, x0, x1) boxes, class id 1."""
STAMP = "2023-01-01T00:00:00.000Z"


def encode_bitmap(piece: np.ndarray) -> str:
    """Supervisely bitmap encoding: palette PNG (0 transparent black, 1 white), zlib, base64."""
    image = Image.fromarray(piece.astype(np.uint8))
    image.putpalette([0, 0, 0, 255, 255, 255])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0, optimize=False)
    return base64.b64encode(zlib.compress(buffer.getvalue())).decode()


def _glands(stem: str, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Gland boxes of an image: the known pattern for KNOWN's sample, one box elsewhere."""
    if stem == KNOWN["sample"]:
        return list(KNOWN["glands"])
    return [(height // 4, height // 2, width // 3, width // 3 + 9)]


def _annotation(stem: str, height: int, width: int, patient: int, grade: str) -> dict:
    """Supervisely annotation JSON of one image."""
    objects = []
    for k, (y0, y1, x0, x1) in enumerate(_glands(stem, height, width)):
        piece = np.ones((y1 - y0, x1 - x0), np.uint8)
        piece[0, 0] = 0  # bitmaps are cropped shapes, not always full boxes
        objects.append(
            {
                "id": 1000 + k,
                "classId": 7,
                "description": "",
                "geometryType": "bitmap",
                "labelerLogin": "ninja",
                "createdAt": STAMP,
                "updatedAt": STAMP,
                "tags": [],
                "classTitle": "gland",
                "bitmap": {"data": encode_bitmap(piece), "origin": [x0, y0]},
            }
        )
    tags = [
        {"id": 1, "tagId": 11, "name": "patient id", "value": patient},
        {"id": 2, "tagId": 12, "name": grade, "value": None},
    ]
    return {
        "description": "",
        "tags": tags,
        "size": {"height": height, "width": width},
        "objects": objects,
    }


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny Supervisely tree under root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    meta = {
        "classes": [{"title": "gland", "shape": "bitmap", "color": "#E8A33C", "id": 7}],
        "tags": [{"name": "patient id", "value_type": "any_number"}],
        "projectType": "images",
    }
    (root / "meta.json").write_text(json.dumps(meta))
    seed = 0
    for split, images in IMAGES.items():
        (root / split / "img").mkdir(parents=True)
        (root / split / "ann").mkdir(parents=True)
        for stem, height, width, patient, grade in images:
            seed += 1
            rgb = tinted_noise(height, width, seed, TINT)
            Image.fromarray(rgb).save(root / split / "img" / f"{stem}.bmp")
            ann = _annotation(stem, height, width, patient, grade)
            (root / split / "ann" / f"{stem}.bmp.json").write_text(json.dumps(ann))


def corrupt_mask(root: Path) -> Path:
    """Truncate one annotation JSON (undecodable); return its path."""
    path = Path(root) / "train" / "ann" / "train_2.bmp.json"
    path.write_bytes(path.read_bytes()[:50])
    return path
