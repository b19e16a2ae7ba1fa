"""The CRAG converter `crag` on a tiny tree in the CRAG v2 layout."""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.registry import load_yaml, records

DATASET = "CRAG"
layout = importlib.import_module(f"tests.data.raw_layouts.{DATASET}")
IDS = ["train_1", "train_2", "train_3", "test_1", "test_2"]


@pytest.fixture
def card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(IDS)
    return card


@pytest.fixture
def raw(tmp_path, card) -> Path:
    """A tiny raw tree in the CRAG v2 layout."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def convert(raw_dir: Path, card: dict) -> list:
    """Run the card's converter to completion."""
    return list(get_converter(card["converter"])(raw_dir, card))


def test_card_names_the_converter(card):
    """The card uses this converter, binary classes and the authors' split list."""
    assert card["converter"] == "crag"
    assert card["classes"] == ["background", "gland"]
    assert card["split_list"]["file"] == "CRAG.json"


def test_ids_splits_groups_images(raw, card):
    """Original stems as ids, valid/ -> test, one group per image, RGB with alpha dropped."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == IDS
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == IDS
    assert samples[3].source_file == "CRAG/valid/Images/test_1.png"
    for s in samples:
        raw_image = np.asarray(Image.open(raw / s.source_file))
        assert s.image.shape == (*raw_image.shape[:2], 3)
        assert np.array_equal(s.image, raw_image[..., :3])
        assert set(np.unique(s.mask).tolist()) == {0, 1}
    assert Image.open(raw / samples[1].source_file).mode == "RGBA"


def test_known_instances_become_gland(raw, card):
    """Every instance of train_1, and the 16-bit ids of test_1, become class 1."""
    samples = {s.sample_id: s for s in convert(raw, card)}
    known = samples[layout.KNOWN["sample"]]
    expected = np.zeros(known.mask.shape, np.uint8)
    for y0, y1, x0, x1 in layout.KNOWN["glands"]:
        expected[y0:y1, x0:x1] = layout.KNOWN["class"]
    assert np.array_equal(known.mask, expected)
    wide = np.asarray(Image.open(raw / "CRAG/valid/Annotation" / f"{layout.WIDE_SAMPLE}.png"))
    assert wide.max() > 255
    assert np.array_equal(samples[layout.WIDE_SAMPLE].mask, (wide > 0).astype(np.uint8))


def test_store_with_official_split(raw, card, tmp_path):
    """The samples pass store validation; the official test images stay in test."""
    out = tmp_path / "crag.zarr"
    write_store(
        convert(raw, card), card, DATASET, out, split_policy="official", seed=0,
        fractions=(0.7, 0.2, 0.1),
    )  # fmt: skip
    meta = {m["id"]: m["split"] for m in DatasetStore(out).group.attrs["samples"]}
    assert {k for k, v in meta.items() if v == "test"} == {"test_1", "test_2"}


def test_corrupt_mask_fails_naming_the_file(raw, card, tmp_path):
    """A damaged annotation stops conversion with its file name in the message."""
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError), match=re.escape(path.name)):
        write_store(
            convert(raw, card), card, DATASET, tmp_path / "x.zarr", split_policy="seeded",
            seed=0, fractions=(0.6, 0.2, 0.2),
        )  # fmt: skip


def test_missing_annotation_is_an_error(raw, card):
    """An image without its annotation is refused, naming the image."""
    (raw / "CRAG/train/Annotation/train_3.png").unlink()
    with pytest.raises(ConversionError, match=r"train_3\.png.*no annotation file"):
        convert(raw, card)


def test_foreground_ignores_alpha(tmp_path):
    """An RGBA label counts its colour channels only: opaque black stays background."""
    from densebench.data.converters.crag import foreground

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[2:4, 2:4, :3] = 255
    Image.fromarray(rgba).save(tmp_path / "label.png")
    fg = foreground(tmp_path / "label.png", DATASET, tmp_path)
    assert fg.sum() == 4 and fg[2:4, 2:4].all()
