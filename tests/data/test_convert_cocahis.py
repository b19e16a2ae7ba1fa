"""CoCaHis converter on a tiny CoCaHis.hdf5 in its release layout (raw_layouts/CoCaHis)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.registry import load_yaml
from tests.data.raw_layouts import CoCaHis as layout

DATASET = "CoCaHis"


def load_card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's count."""
    card = copy.deepcopy(load_yaml(ROOT / "config/datasets.yaml")[DATASET])
    card["num_images"] = len(layout.SPLITS)
    return card


@pytest.fixture
def card() -> dict:
    """The card with the tiny tree's image count."""
    return load_card()


@pytest.fixture
def raw(tmp_path, card) -> Path:
    """A freshly written tiny raw tree."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def convert(raw: Path, card: dict) -> list:
    """Run the card's converter to completion."""
    return list(get_converter(card["converter"])(raw, card))


def test_card_names_this_converter(card):
    """The card points at the cocahis module and the single HDF5 source."""
    assert card["converter"] == "cocahis"
    assert card["split_list"]["file"] == "CoCaHis.json"
    assert card["sources"][0]["filename"] == "CoCaHis.hdf5"
    assert card["sources"][0]["extract"] is False


def test_samples(raw, card):
    """Authors' ids, HE/raw images, majority-vote masks, official split, patient groups."""
    samples = convert(raw, card)
    images, masks = layout.arrays()
    assert [s.sample_id for s in samples] == [f"sample_{i:04d}" for i in range(5)]
    assert [s.official_split for s in samples] == layout.SPLITS
    assert [s.group_id for s in samples] == [f"patient_{p}" for p in layout.PATIENTS]
    for i, s in enumerate(samples):
        assert s.source_file == "CoCaHis.hdf5"
        assert s.image.dtype == np.uint8 and s.image.shape == (48, 64, 3)
        assert np.array_equal(s.image, images[i])  # raw, not the stain-normalised sn1/sn2
        assert s.mask.dtype == np.uint8 and s.mask.shape == (48, 64)
        assert np.all(s.mask[layout.CANCER_BOX[i]] == 1)
        assert s.mask.sum() == masks[i].sum()  # majority vote, not GT1
        assert s.mask[47, 63] == 0


def test_bytes_attributes_and_bool_masks(raw, card):
    """Fixed-length byte attributes and boolean masks decode the same way."""
    import h5py

    with h5py.File(raw / layout.FILE_NAME, "r+") as f:
        f["HE"].attrs["train_test_split"] = np.array(layout.SPLITS, dtype="S5")
        f["HE"].attrs["patient_num"] = np.array(layout.PATIENTS, dtype=np.float64)
        vote = f["GT/GT_majority_vote"][()].astype(bool)
        del f["GT/GT_majority_vote"]
        f["GT"].create_dataset("GT_majority_vote", data=vote)
    samples = convert(raw, card)
    assert [s.official_split for s in samples] == layout.SPLITS
    assert samples[0].group_id == "patient_1"
    assert np.array_equal(samples[4].mask, layout.arrays()[1][4])


def test_bad_split_attribute(raw, card):
    """An unknown split value names the attribute."""
    import h5py

    with h5py.File(raw / layout.FILE_NAME, "r+") as f:
        f["HE"].attrs.create(
            "train_test_split", ["train", "valid"] * 2 + ["test"], dtype=h5py.string_dtype()
        )
    with pytest.raises(ConversionError, match="train_test_split"):
        convert(raw, card)


def test_store_official(raw, card, tmp_path):
    """The samples pass store validation; official test images stay test."""
    out = tmp_path / "CoCaHis.zarr"
    write_store(
        convert(raw, card),
        card,
        DATASET,
        out,
        split_policy="official",
        seed=0,
        fractions=(0.7, 0.2, 0.1),
    )
    meta = DatasetStore(out).group.attrs["samples"]
    assert [m["split"] == "test" for m in meta] == [s == "test" for s in layout.SPLITS]


def test_store_paper_split(raw, card, tmp_path):
    """The authors' split list entries (Data/CoCaHis/images/sample_0058.png) map by stem."""
    listing = {
        "num_classes": len(card["classes"]),
        "data": {
            split: [{"image_path": f"Data/CoCaHis/images/{s}.png", "mask_path": ""} for s in stems]
            for split, stems in {
                "train": ["sample_0000", "sample_0004"],
                "val": ["sample_0001"],
                "test": ["sample_0003"],
            }.items()
        },
    }
    out = tmp_path / "paper.zarr"
    write_store(
        convert(raw, card),
        card,
        DATASET,
        out,
        split_policy="paper",
        seed=0,
        fractions=(0.7, 0.2, 0.1),
        split_list=listing,
    )
    splits = {m["id"]: m["split"] for m in DatasetStore(out).group.attrs["samples"]}
    assert splits == {
        "sample_0000": "train",
        "sample_0001": "val",
        "sample_0002": "unused",
        "sample_0003": "test",
        "sample_0004": "train",
    }


def test_corrupt_mask_fails(raw, card, tmp_path):
    """A mask value outside 0/1 stops the conversion, naming the HDF5 file."""
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError), match=path.name) as info:
        write_store(
            convert(raw, card),
            card,
            DATASET,
            tmp_path / "bad.zarr",
            split_policy="official",
            seed=0,
            fractions=(0.7, 0.2, 0.1),
        )
    assert "GT_majority_vote[2]" in str(info.value)
    assert not (tmp_path / "bad.zarr").exists()
