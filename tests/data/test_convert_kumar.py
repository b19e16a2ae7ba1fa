"""Kumar converter on a tiny tree in the Google Drive layout (tests/data/raw_layouts/kumar.py)."""

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
from tests.data.raw_layouts import kumar as layout

DATASET = "kumar"
FRACTIONS = (0.7, 0.2, 0.1)
# Authors' order: one running index over train, test_same, test_diff; plain string order inside.
EXPECTED = [
    ("kumar_train_sample_000000", "train", "TCGA-18-5592-01Z-00-DX1"),
    ("kumar_train_sample_000001", "train", "TCGA-A7-A13E-01Z-00-DX1"),
    ("kumar_train_sample_000002", "train", "TCGA-A7-A13E-01Z-00-DX2"),
    ("kumar_test_same_sample_000003", "test_same", "TCGA-21-5784-01Z-00-DX1"),
    ("kumar_test_diff_sample_000004", "test_diff", "TCGA-AY-A8YK-01A-01-TS1"),
    ("kumar_test_diff_sample_000005", "test_diff", "TCGA-KB-A93J-01A-01-TS1"),
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
    """Authors' sample ids, train -> train and both test folders -> test, TCGA patient groups."""
    samples = run(raw, card)
    assert [s.sample_id for s in samples] == [e[0] for e in EXPECTED]
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 3
    assert [s.group_id for s in samples] == [
        "TCGA-18-5592",
        "TCGA-A7-A13E",
        "TCGA-A7-A13E",
        "TCGA-21-5784",
        "TCGA-AY-A8YK",
        "TCGA-KB-A93J",
    ]
    assert [s.source_file for s in samples] == [
        f"kumar/{folder}/Images/{stem}.tif" for _, folder, stem in EXPECTED
    ]


def test_mask_is_binary_nuclei(raw, card):
    """Every instance (int32 or double inst_map) becomes 1, background 0."""
    for sample in run(raw, card):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPE
        assert np.all(sample.mask[layout.NUCLEUS] == 1) and np.all(sample.mask[layout.SECOND] == 1)
        assert int(sample.mask.sum()) == 10 * 14 + 10 * 8
        assert set(np.unique(sample.mask).tolist()) == {0, 1}


def test_rgb_drops_alpha(raw, card):
    """An RGBA TIFF becomes its RGB channels."""
    samples = {Path(s.source_file).stem: s for s in run(raw, card)}
    path = raw / "kumar" / "test_same" / "Images" / f"{layout.RGBA}.tif"
    rgba = np.asarray(Image.open(path))
    assert rgba.shape[2] == 4
    assert np.array_equal(samples[layout.RGBA].image, rgba[..., :3])


def test_paper_split_list_maps_by_stem(raw, card):
    """Entries in the authors' path format (Data/kumar/images/<id>.png) map one to one."""
    ids = [s.sample_id for s in run(raw, card)]
    entries = [{"image_path": f"Data/kumar/images/{i}.png"} for i in ids]
    listing = {"data": {"train": entries[:4], "val": entries[4:5], "test": entries[5:]}}
    assert paper_split(ids, listing, DATASET) == ["train"] * 4 + ["val", "test"]


def test_store_official_split(raw, card, tmp_path):
    """The converted tree validates; test_same and test_diff form the test split."""
    out = tmp_path / "kumar.zarr"
    write_store(
        run(raw, card), card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
    )
    store = DatasetStore(out)
    assert [m["id"] for m in store.samples] == [e[0] for e in EXPECTED]
    assert [m["split"] for m in store.samples][3:] == ["test"] * 3
    assert store.num_classes == 2


def test_corrupt_label_is_refused(raw, card, tmp_path):
    """A truncated .mat fails conversion naming the file; no store is written."""
    bad = layout.corrupt_mask(raw)
    out = tmp_path / "kumar.zarr"
    samples = get_converter(card["converter"])(raw, card)  # streamed, as the workflow does
    with pytest.raises((ConversionError, ValidationError)) as info:
        write_store(
            samples, card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
        )
    assert str(bad) in str(info.value) and DATASET in str(info.value)
    assert not out.exists()


def test_missing_folder_is_named(raw, card):
    """A missing split folder would shift the authors' numbering: refused, naming the folder."""
    for path in sorted((raw / "kumar" / "test_same").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (raw / "kumar" / "test_same").rmdir()
    with pytest.raises(ConversionError, match=r"test_same/Images: folder is missing"):
        run(raw, card)
