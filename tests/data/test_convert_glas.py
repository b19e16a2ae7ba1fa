"""GlaS quirks (converter `glas`): DatasetNinja's Supervisely bitmaps and Warwick's BMP release."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError, natural_key
from densebench.data.synthetic import write_synthetic_raw
from tests.data.raw_layouts import GlaS as layout
from tests.data.raw_layouts import convert

DATASET = "GlaS"
IDS = ["testA_1", "testA_2", "testB_1", "train_1", "train_2"]
FOLDERS = ["test_a", "test_a", "test_b", "train", "train"]


def test_ids_splits_groups(raw, card):
    """Original stems as ids, official train/test, patient tags as groups, binary masks."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == IDS
    assert [s.official_split for s in samples] == ["test"] * 3 + ["train"] * 2
    assert [s.group_id for s in samples] == ["1", "3", "2", "1", "2"]
    assert [s.source_file for s in samples] == [
        f"{folder}/img/{i}.bmp" for folder, i in zip(FOLDERS, IDS, strict=True)
    ]
    assert all(set(np.unique(s.mask).tolist()) == {0, 1} for s in samples)


def test_known_gland_pattern(raw, card):
    """The glands drawn into train_1 come out exactly, as class 1."""
    sample = next(s for s in convert(raw, card) if s.sample_id == layout.KNOWN["sample"])
    expected = np.zeros(sample.mask.shape, np.uint8)
    for y0, y1, x0, x1 in layout.KNOWN["glands"]:
        expected[y0:y1, x0:x1] = layout.KNOWN["class"]
        expected[y0, x0] = 0  # the layout leaves each bitmap's first pixel out
    assert np.array_equal(sample.mask, expected)


def test_missing_annotation_and_polygon_are_errors(raw, card):
    """An image without annotation, or a non-bitmap gland, is refused."""
    ann = raw / "test_b" / "ann" / "testB_1.bmp.json"
    data = json.loads(ann.read_text())
    data["objects"][0]["geometryType"] = "polygon"
    ann.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match="geometry 'polygon'"):
        convert(raw, card)
    ann.unlink()
    with pytest.raises(ConversionError, match=r"testB_1\.bmp.*no annotation file"):
        convert(raw, card)


def test_warwick_bmp_layout(tmp_path, card):
    """The Warwick release (instance BMPs + Grade.csv) converts to the same naming."""
    spec = {"style": "glas", "num_images": 6, "height": 40, "width": 56, "seed": 5}
    write_synthetic_raw(
        {"classes": ["background", "benign_gland", "tumour_gland"], "synthetic": spec},
        tmp_path / "warwick",
    )
    samples = convert(tmp_path / "warwick", card)
    root = tmp_path / "warwick" / "Warwick_QU_Dataset"
    ids = [s.sample_id for s in samples]
    assert ids == sorted(ids, key=natural_key) and ids[0] == "testA_1"
    assert {s.sample_id for s in samples} == {p.stem for p in root.glob("*_?.bmp")}
    for s in samples:
        anno = np.asarray(Image.open(root / f"{s.sample_id}_anno.bmp"))
        assert np.array_equal(s.mask, (anno > 0).astype(np.uint8))
        assert s.official_split == ("train" if s.sample_id.startswith("train") else "test")
    assert {s.group_id for s in samples} == {"1", "2"}
