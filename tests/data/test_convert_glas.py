"""The real-GlaS converter `glas` on tiny trees in DatasetNinja's and Warwick's layouts."""

from __future__ import annotations

import copy
import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter, natural_key
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.data.synthetic import write_synthetic_raw
from densebench.registry import load_yaml, records

DATASET = "GlaS"
layout = importlib.import_module(f"tests.data.raw_layouts.{DATASET}")
IDS = ["testA_1", "testA_2", "testB_1", "train_1", "train_2"]


@pytest.fixture
def card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(IDS)
    return card


@pytest.fixture
def raw(tmp_path, card) -> Path:
    """A tiny raw tree in the Supervisely layout."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def convert(raw_dir: Path, card: dict) -> list:
    """Run the card's converter to completion."""
    return list(get_converter(card["converter"])(raw_dir, card))


def test_card_names_the_converter(card):
    """The card uses this converter, binary classes and the authors' split list."""
    assert card["converter"] == "glas"
    assert card["classes"] == ["background", "gland"]
    assert card["split_list"]["file"] == "GlaS.json"


def test_ids_splits_groups_images(raw, card):
    """Original stems as ids, official train/test, patient tags as groups, RGB images."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == IDS
    assert [s.official_split for s in samples] == ["test"] * 3 + ["train"] * 2
    assert [s.group_id for s in samples] == ["1", "3", "2", "1", "2"]
    assert samples[0].source_file == "test_a/img/testA_1.bmp"
    for s in samples:
        split = {"test": "test_a" if "A" in s.sample_id else "test_b"}.get(s.official_split)
        image = np.asarray(Image.open(raw / (split or "train") / "img" / f"{s.sample_id}.bmp"))
        assert s.image.dtype == np.uint8 and np.array_equal(s.image, image)
        assert set(np.unique(s.mask).tolist()) == {0, 1}


def test_known_gland_pattern(raw, card):
    """The glands drawn into train_1 come out exactly, as class 1."""
    sample = next(s for s in convert(raw, card) if s.sample_id == layout.KNOWN["sample"])
    expected = np.zeros(sample.mask.shape, np.uint8)
    for y0, y1, x0, x1 in layout.KNOWN["glands"]:
        expected[y0:y1, x0:x1] = layout.KNOWN["class"]
        expected[y0, x0] = 0  # the layout leaves each bitmap's first pixel out
    assert np.array_equal(sample.mask, expected)


def test_store_with_official_split(raw, card, tmp_path):
    """The samples pass store validation; the official test images stay in test."""
    out = tmp_path / "glas.zarr"
    write_store(
        convert(raw, card), card, DATASET, out, split_policy="official", seed=0,
        fractions=(0.7, 0.2, 0.1),
    )  # fmt: skip
    meta = {m["id"]: m["split"] for m in DatasetStore(out).group.attrs["samples"]}
    assert {k for k, v in meta.items() if v == "test"} == {"testA_1", "testA_2", "testB_1"}


def test_corrupt_mask_fails_naming_the_file(raw, card, tmp_path):
    """A damaged annotation stops conversion with its file name in the message."""
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError), match=re.escape(path.name)):
        write_store(
            convert(raw, card), card, DATASET, tmp_path / "x.zarr", split_policy="seeded",
            seed=0, fractions=(0.6, 0.2, 0.2),
        )  # fmt: skip


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
