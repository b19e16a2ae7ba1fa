"""The RINGS converter `rings` on a tiny tree in the layout of TRAIN.zip and TEST.zip."""

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

DATASET = "RINGS"
layout = importlib.import_module(f"tests.data.raw_layouts.{DATASET}")
IDS = ["P1_D7_4_17_3", "P1_D7_4_17_12", "P2_F11_13_12_2", "P3_C11_5_10_2", "P6_E6_16_4_3"]


@pytest.fixture
def card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(IDS)
    return card


@pytest.fixture
def raw(tmp_path, card) -> Path:
    """A tiny raw tree in the RINGS layout."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def convert(raw_dir: Path, card: dict) -> list:
    """Run the card's converter to completion."""
    return list(get_converter(card["converter"])(raw_dir, card))


def test_card_names_the_converter(card):
    """The card uses this converter, three classes and the authors' split list."""
    assert card["converter"] == "rings"
    assert card["classes"] == ["background", "gland", "tumour"]
    assert card["split_list"]["file"] == "RINGS.json"


def test_ids_splits_groups_images(raw, card):
    """Original stems as ids (natural order), TRAIN/TEST splits, patient groups, RGB images."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == IDS
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == ["P1", "P1", "P2", "P3", "P6"]
    assert samples[0].source_file == "TRAIN/IMAGES/P1_D7_4_17_3.png"
    for s in samples:
        assert np.array_equal(s.image, np.asarray(Image.open(raw / s.source_file)))
    assert set(np.unique(np.concatenate([s.mask.ravel() for s in samples])).tolist()) == {0, 1, 2}


def test_tumour_overrides_gland(raw, card):
    """Known gland and tumour boxes: 1 on gland only, 2 on all of the tumour box."""
    sample = next(s for s in convert(raw, card) if s.sample_id == layout.KNOWN["sample"])
    expected = np.zeros(sample.mask.shape, np.uint8)
    gy0, gy1, gx0, gx1 = layout.KNOWN["gland"]
    ty0, ty1, tx0, tx1 = layout.KNOWN["tumour"]
    expected[gy0:gy1, gx0:gx1] = layout.KNOWN["classes"]["gland"]
    expected[ty0:ty1, tx0:tx1] = layout.KNOWN["classes"]["tumour"]
    assert np.array_equal(sample.mask, expected)
    assert (sample.mask == 1).any() and (sample.mask == 2).any()


def test_store_with_official_split(raw, card, tmp_path):
    """The samples pass store validation; the official TEST images stay in test."""
    out = tmp_path / "rings.zarr"
    write_store(
        convert(raw, card), card, DATASET, out, split_policy="official", seed=0,
        fractions=(0.7, 0.2, 0.1),
    )  # fmt: skip
    meta = {m["id"]: m["split"] for m in DatasetStore(out).group.attrs["samples"]}
    assert {k for k, v in meta.items() if v == "test"} == set(IDS[3:])


def test_corrupt_mask_fails_naming_the_file(raw, card, tmp_path):
    """A mask of the wrong shape stops conversion with its file name in the message."""
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError), match=re.escape(path.name)):
        write_store(
            convert(raw, card), card, DATASET, tmp_path / "x.zarr", split_policy="seeded",
            seed=0, fractions=(0.6, 0.2, 0.2),
        )  # fmt: skip


def test_missing_tumour_mask_is_an_error(raw, card):
    """An image without its tumour mask is refused, naming the image."""
    (raw / "TRAIN" / "MANUAL TUMOR" / "P2_F11_13_12_2.png").unlink()
    with pytest.raises(ConversionError, match=r"P2_F11_13_12_2\.png.*MANUAL TUMOR"):
        convert(raw, card)
