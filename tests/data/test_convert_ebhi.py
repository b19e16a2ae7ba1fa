"""The EBHI-Seg converter `ebhi` on a tiny tree in the release layout."""

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
from densebench.data.store import ValidationError, write_store
from densebench.registry import load_yaml, records

DATASET = "EBHI"
layout = importlib.import_module(f"tests.data.raw_layouts.{DATASET}")
EXPECTED = {  # id -> (category folder kept, class id); natural order of the ids
    "GT2012149-2-400-005": ("Polyp", 5),
    "GT2016907-1-400-003": ("Adenocarcinoma", 1),
    "GT2016907-1-400-004": ("Adenocarcinoma", 1),
    "GTXC2014192-2-400-006": ("High-grade IN", 2),
    "GTXC2110135-2-400-007": ("Serrated adenoma", 6),
    "GTxc2014080-2-400-001": ("Normal", 4),
}


@pytest.fixture
def card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(EXPECTED)
    return card


@pytest.fixture
def raw(tmp_path, card) -> Path:
    """A tiny raw tree in the EBHI-Seg layout."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def convert(raw_dir: Path, card: dict) -> list:
    """Run the card's converter to completion."""
    return list(get_converter(card["converter"])(raw_dir, card))


def test_card_names_the_converter(card):
    """The card uses this converter, seven classes and the authors' split list."""
    assert card["converter"] == "ebhi"
    assert card["classes"][0] == "background" and len(card["classes"]) == 7
    assert card["num_images"] == len(EXPECTED)
    assert card["split_list"]["file"] == "EBHI.json"


def test_ids_classes_groups(raw, card):
    """Original stems as ids; the later category wins a repeated name; unlabeled is skipped."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == list(EXPECTED)
    assert "GTxc2014080-2-400-002" not in {s.sample_id for s in samples}
    for s in samples:
        category, class_id = EXPECTED[s.sample_id]
        assert s.source_file == f"EBHI-SEG/{category}/image/{s.sample_id}.png"
        assert set(np.unique(s.mask).tolist()) == {0, class_id}
        assert np.array_equal(s.image, np.asarray(Image.open(raw / s.source_file)))
        assert s.official_split is None
    groups = {s.sample_id: s.group_id for s in samples}
    assert groups["GT2016907-1-400-003"] == groups["GT2016907-1-400-004"] == "GT2016907"
    assert groups["GTxc2014080-2-400-001"] == "GTXC2014080"


def test_known_pattern_of_the_repeated_name(raw, card):
    """The repeated name keeps the Polyp image and label, painted with class 5."""
    sample = next(s for s in convert(raw, card) if s.sample_id == layout.KNOWN["sample"])
    expected = np.zeros(sample.mask.shape, np.uint8)
    y0, y1, x0, x1 = layout.KNOWN["box"]
    expected[y0:y1, x0:x1] = layout.KNOWN["class"]
    assert np.array_equal(sample.mask, expected)
    earlier = raw / "EBHI-SEG" / "Low-grade IN" / "image" / f"{layout.KNOWN['sample']}.png"
    assert not np.array_equal(sample.image, np.asarray(Image.open(earlier)))


def test_label_styles_binarise(raw, card):
    """0/1, 0/255 and 3-channel labels all give the category id on the label's foreground."""
    for s in convert(raw, card):
        category, class_id = EXPECTED[s.sample_id]
        label = np.asarray(Image.open(raw / "EBHI-SEG" / category / "label" / f"{s.sample_id}.png"))
        flat = label if label.ndim == 2 else label[..., 0]
        assert np.array_equal(s.mask, np.where(flat > 0, class_id, 0))


def test_store_seeded(raw, card, tmp_path):
    """The samples pass store validation under the seeded split."""
    write_store(
        convert(raw, card), card, DATASET, tmp_path / "ebhi.zarr", split_policy="seeded",
        seed=0, fractions=(0.5, 0.25, 0.25),
    )  # fmt: skip
    assert (tmp_path / "ebhi.zarr" / "zarr.json").is_file()


def test_corrupt_mask_fails_naming_the_file(raw, card, tmp_path):
    """A damaged label stops conversion with its file name in the message."""
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError), match=re.escape(path.name)):
        write_store(
            convert(raw, card), card, DATASET, tmp_path / "x.zarr", split_policy="seeded",
            seed=0, fractions=(0.6, 0.2, 0.2),
        )  # fmt: skip


def test_missing_categories_is_an_error(tmp_path, card):
    """A raw folder without any category folder is refused with the expected layout."""
    (tmp_path / "empty" / "EBHI-SEG").mkdir(parents=True)
    with pytest.raises(ConversionError, match="no category folder"):
        convert(tmp_path / "empty", card)
