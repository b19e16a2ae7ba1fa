"""CoNSeP converter on a tiny tree in the release layout (tests/data/raw_layouts/CoNSeP.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.splits import paper_split
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.registry import load_yaml, records
from tests.data.raw_layouts import CoNSeP as layout

DATASET = "CoNSeP"
FRACTIONS = (0.7, 0.2, 0.1)
# Authors' order: one running index, Train then Test, plain string order within a folder.
EXPECTED = [
    ("consep_Train_sample_000000", "Train", "train_1"),
    ("consep_Train_sample_000001", "Train", "train_10"),
    ("consep_Train_sample_000002", "Train", "train_2"),
    ("consep_Test_sample_000003", "Test", "test_1"),
    ("consep_Test_sample_000004", "Test", "test_2"),
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
    """Authors' sample ids, official Train/Test split, stems as groups, provenance."""
    samples = run(raw, card)
    assert [s.sample_id for s in samples] == [e[0] for e in EXPECTED]
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == [e[2] for e in EXPECTED]
    assert [s.source_file for s in samples] == [
        f"CoNSeP/{folder}/Images/{stem}.png" for _, folder, stem in EXPECTED
    ]


def test_mask_is_raw_type_map(raw, card):
    """The hand-drawn nuclei carry their raw type (0..7, no merging); the rest is background."""
    for sample, (_, folder, stem) in zip(run(raw, card), EXPECTED, strict=True):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPE
        assert np.all(sample.mask[layout.NUCLEUS] == layout.TYPES[stem])
        assert np.all(sample.mask[layout.SECOND] == layout.SECOND_TYPE)
        assert sample.mask[0, 0] == 0 and int((sample.mask > 0).sum()) == 12 * 16 + 12 * 12
        mat = loadmat(raw / "CoNSeP" / folder / "Labels" / f"{stem}.mat")
        assert np.array_equal(sample.mask, mat["type_map"])


def test_rgb_drops_alpha(raw, card):
    """RGBA images become their RGB channels."""
    samples = {s.group_id: s for s in run(raw, card)}
    rgba = np.asarray(Image.open(raw / "CoNSeP" / "Train" / "Images" / f"{layout.RGBA}.png"))
    assert rgba.shape[2] == 4
    assert np.array_equal(samples[layout.RGBA].image, rgba[..., :3])
    assert all(s.image.shape == (*layout.SHAPE, 3) for s in samples.values())


def test_paper_split_list_maps_by_stem(raw, card):
    """Entries in the authors' path format map one to one onto our samples."""
    ids = [s.sample_id for s in run(raw, card)]
    listing = {
        "data": {
            "train": [{"image_path": f"Data/CoNSeP/images/{i}.png"} for i in ids[:3]],
            "val": [{"image_path": f"Data/CoNSeP/images/{ids[3]}.png"}],
            "test": [{"image_path": f"Data/CoNSeP/images/{ids[4]}.png"}],
        }
    }
    assert paper_split(ids, listing, DATASET) == ["train"] * 3 + ["val", "test"]


def test_store_official_split(raw, card, tmp_path):
    """The converted tree validates and keeps the official test set."""
    out = tmp_path / "CoNSeP.zarr"
    write_store(
        run(raw, card), card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
    )
    store = DatasetStore(out)
    assert [m["id"] for m in store.samples] == [e[0] for e in EXPECTED]
    assert [m["split"] for m in store.samples][3:] == ["test", "test"]
    assert store.num_classes == 8


def test_corrupt_label_is_refused(raw, card, tmp_path):
    """A type outside the classes fails conversion naming the label file; no store is written."""
    bad = layout.corrupt_mask(raw)
    out = tmp_path / "CoNSeP.zarr"
    samples = get_converter(card["converter"])(raw, card)  # streamed, as the workflow does
    with pytest.raises((ConversionError, ValidationError)) as info:
        write_store(
            samples, card, DATASET, out, split_policy="official", seed=0, fractions=FRACTIONS
        )
    assert str(bad) in str(info.value) and DATASET in str(info.value)
    assert not out.exists()


def test_missing_label_is_named(raw, card):
    """An image without its .mat label fails naming the image."""
    (raw / "CoNSeP" / "Train" / "Labels" / "train_2.mat").unlink()
    with pytest.raises(ConversionError, match=r"train_2\.png.*no label file"):
        run(raw, card)
