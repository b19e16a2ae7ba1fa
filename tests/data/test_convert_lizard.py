"""Lizard converter on a tiny tree in the Warwick zip layout (tests/data/raw_layouts/Lizard.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.splits import paper_split
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.registry import load_yaml, records
from tests.data.raw_layouts import Lizard as layout

DATASET = "Lizard"
FRACTIONS = (0.7, 0.2, 0.1)
EXPECTED = ["consep_1", "consep_2", "crag_1", "dpath_1", "glas_2", "glas_10", "pannuke_1"]
SPLITS = {1: "train", 2: "val", 3: "test"}


@pytest.fixture(scope="module")
def card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's count."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(EXPECTED)
    return card


@pytest.fixture
def raw(tmp_path, card) -> Path:
    """A fresh tiny raw tree."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def run(raw: Path, card: dict) -> list:
    """Convert a raw tree completely."""
    return list(get_converter(card["converter"])(raw, card))


def folder_of(stem: str) -> str:
    """The image folder of a stem in the tiny tree."""
    return next(f for f, stems in layout.IMAGES.items() if stem in stems)


def test_ids_splits_groups(raw, card):
    """Original stems as ids (natural order), info.csv folds as splits, stems as groups."""
    samples = run(raw, card)
    assert [s.sample_id for s in samples] == EXPECTED
    assert [s.official_split for s in samples] == [SPLITS[layout.FOLDS[s]] for s in EXPECTED]
    assert [s.group_id for s in samples] == EXPECTED
    assert [s.source_file for s in samples] == [f"{folder_of(s)}/{s}.png" for s in EXPECTED]


def test_mask_paints_instance_classes(raw, card):
    """Instances get their class through the id list; an id missing from it stays 0."""
    for sample in run(raw, card):
        stem = sample.sample_id
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.shape_of(stem)
        assert np.all(sample.mask[layout.NUCLEUS] == layout.CLASSES[stem])
        assert np.all(sample.mask[layout.SECOND] == layout.SECOND_CLASS)
        assert np.all(sample.mask[layout.ORPHAN] == 0)
        assert int((sample.mask > 0).sum()) == 10 * 12 + 12 * 10


def test_rgb_drops_alpha(raw, card):
    """An RGBA PNG becomes its RGB channels."""
    samples = {s.sample_id: s for s in run(raw, card)}
    rgba = np.asarray(Image.open(raw / folder_of(layout.RGBA) / f"{layout.RGBA}.png"))
    assert rgba.shape[2] == 4
    assert np.array_equal(samples[layout.RGBA].image, rgba[..., :3])


def test_kaggle_layout_is_accepted(raw, card, tmp_path):
    """The Kaggle mirror's nesting (lizard_images1/Lizard_Images1/...) converts identically."""
    kaggle = tmp_path / "kaggle"
    for name in (*layout.IMAGES, "Lizard_Labels"):
        (kaggle / name.lower()).mkdir(parents=True)
        (raw / name).rename(kaggle / name.lower() / name)
    samples = run(kaggle, card)
    assert [s.sample_id for s in samples] == EXPECTED
    assert samples[0].source_file == "lizard_images1/Lizard_Images1/consep_1.png"


def test_paper_split_list_maps_by_stem(raw, card):
    """Entries in the authors' path format map one to one onto our samples."""
    ids = [s.sample_id for s in run(raw, card)]
    entries = [{"image_path": f"Data/Lizard/images/{i}.png"} for i in ids]
    listing = {"data": {"train": entries[:5], "val": entries[5:6], "test": entries[6:]}}
    assert paper_split(ids, listing, DATASET) == ["train"] * 5 + ["val", "test"]


def test_store_official_split(raw, card, tmp_path):
    """The converted tree validates and keeps the folds' train/val/test."""
    out = tmp_path / "Lizard.zarr"
    write_store(
        run(raw, card), card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
    )
    store = DatasetStore(out)
    assert [m["id"] for m in store.samples] == EXPECTED
    assert [m["split"] for m in store.samples] == [SPLITS[layout.FOLDS[s]] for s in EXPECTED]
    assert store.num_classes == 7


def test_corrupt_label_is_refused(raw, card, tmp_path):
    """A class outside 0..6 fails conversion naming the label file; no store is written."""
    bad = layout.corrupt_mask(raw)
    out = tmp_path / "Lizard.zarr"
    samples = get_converter(card["converter"])(raw, card)  # streamed, as the workflow does
    with pytest.raises((ConversionError, ValidationError)) as info:
        write_store(
            samples, card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
        )
    assert str(bad) in str(info.value) and DATASET in str(info.value)
    assert not out.exists()


def test_image_missing_from_info_csv_is_named(raw, card):
    """An image without a fold row fails naming info.csv."""
    csv_path = raw / "Lizard_Labels" / "info.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(line for line in lines if not line.startswith("crag_1")) + "\n")
    with pytest.raises(ConversionError, match=r"info\.csv: no row for image 'crag_1'"):
        run(raw, card)
