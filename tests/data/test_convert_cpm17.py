"""CPM-17 converter on a tiny tree in the Google Drive layout (tests/data/raw_layouts/cpm17.py)."""

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
from tests.data.raw_layouts import cpm17 as layout

DATASET = "cpm17"
FRACTIONS = (0.7, 0.2, 0.1)
EXPECTED = [
    ("cpm17_train_sample_000000", "train", "image_00"),
    ("cpm17_train_sample_000001", "train", "image_01"),
    ("cpm17_train_sample_000002", "train", "image_02"),
    ("cpm17_test_sample_000003", "test", "image_00"),
    ("cpm17_test_sample_000004", "test", "image_01"),
]


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


def test_ids_splits_groups(raw, card):
    """Authors' sample ids, official train/test, groups unique across folders."""
    samples = run(raw, card)
    assert [s.sample_id for s in samples] == [e[0] for e in EXPECTED]
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == [f"{folder}_{stem}" for _, folder, stem in EXPECTED]
    assert [s.source_file for s in samples] == [
        f"cpm17/{folder}/Images/{stem}.png" for _, folder, stem in EXPECTED
    ]


def test_mask_is_binary_nuclei(raw, card):
    """Both hand-drawn instances become 1, background 0."""
    for sample in run(raw, card):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPE
        assert np.all(sample.mask[layout.NUCLEUS] == 1) and np.all(sample.mask[layout.SECOND] == 1)
        assert int(sample.mask.sum()) == 200 and sample.mask[0, 0] == 0


def test_rgb_drops_alpha(raw, card):
    """An RGBA PNG becomes its RGB channels."""
    folder, stem = layout.RGBA
    samples = {(s.official_split, Path(s.source_file).stem): s for s in run(raw, card)}
    rgba = np.asarray(Image.open(raw / "cpm17" / folder / "Images" / f"{stem}.png"))
    assert rgba.shape[2] == 4
    assert np.array_equal(samples[(folder, stem)].image, rgba[..., :3])


def test_paper_split_list_maps_by_stem(raw, card):
    """Entries in the authors' path format map one to one onto our samples."""
    ids = [s.sample_id for s in run(raw, card)]
    entries = [{"image_path": f"Data/cpm17/images/{i}.png"} for i in ids]
    listing = {"data": {"train": entries[:3], "val": entries[3:4], "test": entries[4:]}}
    assert paper_split(ids, listing, DATASET) == ["train"] * 3 + ["val", "test"]


def test_store_official_split(raw, card, tmp_path):
    """The converted tree validates and keeps the official test set."""
    out = tmp_path / "cpm17.zarr"
    write_store(
        run(raw, card), card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
    )
    store = DatasetStore(out)
    assert [m["id"] for m in store.samples] == [e[0] for e in EXPECTED]
    assert [m["split"] for m in store.samples][3:] == ["test", "test"]


def test_corrupt_label_is_refused(raw, card, tmp_path):
    """A truncated .mat fails conversion naming the file; no store is written."""
    bad = layout.corrupt_mask(raw)
    out = tmp_path / "cpm17.zarr"
    samples = get_converter(card["converter"])(raw, card)  # streamed, as the workflow does
    with pytest.raises((ConversionError, ValidationError)) as info:
        write_store(
            samples, card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
        )
    assert str(bad) in str(info.value) and DATASET in str(info.value)
    assert not out.exists()


def test_nested_download_folder_is_found(raw, card, tmp_path):
    """The tree is found one level deeper too (a Drive zip unpacked into its own folder)."""
    nested = tmp_path / "nested"
    (nested / "cpm17-20240101T000000Z-001").mkdir(parents=True)
    (raw / "cpm17").rename(nested / "cpm17-20240101T000000Z-001" / "cpm17")
    assert [s.sample_id for s in run(nested, card)] == [e[0] for e in EXPECTED]
