"""CPM-15 converter on a tiny tree in the Google Drive layout (tests/data/raw_layouts/cpm15.py)."""

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
from tests.data.raw_layouts import cpm15 as layout

DATASET = "cpm15"
FRACTIONS = (0.5, 0.25, 0.25)
EXPECTED = [f"cpm15_semantic_sample_{i:06d}" for i in range(len(layout.STEMS))]


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


def test_ids_no_split_stem_groups(raw, card):
    """Authors' sample ids in name order, no official split, one group per image."""
    samples = run(raw, card)
    assert [s.sample_id for s in samples] == EXPECTED
    assert all(s.official_split is None for s in samples)
    assert [s.group_id for s in samples] == layout.STEMS
    assert [s.source_file for s in samples] == [f"cpm15/Images/{s}.png" for s in layout.STEMS]


def test_mask_is_binary_nuclei(raw, card):
    """Both hand-drawn instances become 1, background 0, at each image's own size."""
    for sample, stem in zip(run(raw, card), layout.STEMS, strict=True):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPES[stem]
        assert np.all(sample.mask[layout.NUCLEUS] == 1) and np.all(sample.mask[layout.SECOND] == 1)
        assert int(sample.mask.sum()) == 10 * 10 + 10 * 12


def test_rgb_drops_alpha(raw, card):
    """An RGBA PNG becomes its RGB channels."""
    samples = dict(zip(layout.STEMS, run(raw, card), strict=True))
    rgba = np.asarray(Image.open(raw / "cpm15" / "Images" / f"{layout.RGBA}.png"))
    assert rgba.shape[2] == 4
    assert np.array_equal(samples[layout.RGBA].image, rgba[..., :3])


def test_paper_split_list_maps_by_stem(raw, card):
    """Entries in the authors' path format map one to one onto our samples."""
    ids = [s.sample_id for s in run(raw, card)]
    entries = [{"image_path": f"Data/cpm15/processed_semantic_dataset/images/{i}.png"} for i in ids]
    listing = {"data": {"train": entries[:2], "val": entries[2:3], "test": entries[3:]}}
    assert paper_split(ids, listing, DATASET) == ["train", "train", "val", "test"]


def test_store_seeded_split(raw, card, tmp_path):
    """The converted tree validates under the seeded policy (no official split)."""
    out = tmp_path / "cpm15.zarr"
    write_store(
        run(raw, card), card, DATASET, out, split_policy="seeded", seed=0, fractions=FRACTIONS
    )
    store = DatasetStore(out)
    assert [m["id"] for m in store.samples] == EXPECTED
    assert {m["split"] for m in store.samples} == {"train", "val", "test"}


def test_corrupt_label_is_refused(raw, card, tmp_path):
    """A label of the wrong shape fails conversion naming the file; no store is written."""
    bad = layout.corrupt_mask(raw)
    out = tmp_path / "cpm15.zarr"
    samples = get_converter(card["converter"])(raw, card)  # streamed, as the workflow does
    with pytest.raises((ConversionError, ValidationError)) as info:
        write_store(samples, card, DATASET, out, split_policy="seeded", seed=0, fractions=FRACTIONS)
    assert str(bad) in str(info.value) and DATASET in str(info.value)
    assert not out.exists()


def test_wrong_key_is_named(raw, card):
    """A label without inst_map fails naming the key and the file."""
    from tests.data.raw_layouts.CoNSeP import save_mat

    path = raw / "cpm15" / "Labels" / "image_00.mat"
    save_mat({"type_map": np.zeros(layout.SHAPES["image_00"], np.int32)}, path)
    with pytest.raises(
        ConversionError, match=r"image_00\.mat: \.mat file has no variable 'inst_map'"
    ):
        run(raw, card)
