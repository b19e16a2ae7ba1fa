"""CoNIC2022 converter on a tiny raw tree in its release layout (raw_layouts/CoNIC2022)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.registry import load_yaml
from tests.data.raw_layouts import CoNIC2022 as layout

DATASET = "CoNIC2022"


def load_card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's count."""
    card = copy.deepcopy(load_yaml(ROOT / "config/datasets.yaml")[DATASET])
    card["num_images"] = len(layout.PATCHES)
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
    """The card points at the conic2022 module and the paper's split list."""
    assert card["converter"] == "conic2022"
    assert card["split_list"]["file"] == "CoNIC2022.json"
    assert card["official_split"] is False


def test_samples(raw, card):
    """Authors' ids, class channel as mask, source-image groups, no official split."""
    samples = convert(raw, card)
    images, labels = layout.arrays()
    assert [s.sample_id for s in samples] == ["0000", "0001", "0002", "0003", "0004", "0005"]
    assert [s.group_id for s in samples] == [
        "consep_1",
        "consep_1",
        "crag_2",
        "crag_2",
        "glas_3",
        "pannuke_4",
    ]
    assert all(s.official_split is None for s in samples)
    for i, s in enumerate(samples):
        assert s.image.dtype == np.uint8 and s.image.shape == (64, 64, 3)
        assert np.array_equal(s.image, images[i])
        assert s.mask.dtype == np.uint8 and s.mask.shape == (64, 64)
        assert np.all(s.mask[layout.NUCLEUS_BOX] == layout.NUCLEUS_CLASS[i])
        assert np.all(s.mask[layout.SECOND_BOX] == 2)
        assert np.array_equal(s.mask, labels[i, :, :, 1])
        assert s.mask[0, 0] == 0 and s.mask[63, 63] == 0
        assert s.source_file == f"{layout.FOLDER}/images.npy"
    assert set(np.unique(np.stack([s.mask for s in samples])).tolist()) == set(range(7))


def test_release_at_top_level(tmp_path, card):
    """The arrays may also sit directly in the raw folder."""
    layout.make_raw(tmp_path / "x", card)
    (tmp_path / "x" / layout.FOLDER).rename(tmp_path / "flat")
    assert [s.sample_id for s in convert(tmp_path / "flat", card)][-1] == "0005"


def test_store_seeded(raw, card, tmp_path):
    """The samples pass store validation; seeded splits keep source images together."""
    out = tmp_path / "CoNIC2022.zarr"
    write_store(
        convert(raw, card),
        card,
        DATASET,
        out,
        split_policy="seeded",
        seed=0,
        fractions=(0.5, 0.25, 0.25),
    )
    meta = DatasetStore(out).group.attrs["samples"]
    assert [m["id"] for m in meta] == [f"{i:04d}" for i in range(6)]
    split_of = {}
    for m in meta:
        assert split_of.setdefault(m["group_id"], m["split"]) == m["split"]


def test_missing_patch_info(raw, card):
    """Without patch_info.csv the groups are unknown: a clear error naming the file."""
    (raw / layout.FOLDER / "patch_info.csv").unlink()
    with pytest.raises(ConversionError, match=r"patch_info\.csv"):
        convert(raw, card)


def test_store_paper_split(raw, card, tmp_path):
    """The authors' split list entries (Data/CoNIC2022/dataset/images/0577.png) map by stem."""
    listing = {
        "num_classes": len(card["classes"]),
        "data": {
            split: [
                {"image_path": f"Data/CoNIC2022/dataset/images/{s}.png", "mask_path": ""}
                for s in stems
            ]
            for split, stems in {
                "train": ["0000", "0003", "0005"],
                "val": ["0001"],
                "test": ["0004"],
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
        "0000": "train",
        "0001": "val",
        "0002": "unused",
        "0003": "train",
        "0004": "test",
        "0005": "train",
    }


def test_corrupt_mask_fails(raw, card, tmp_path):
    """A class outside 0..6 in labels.npy stops the conversion, naming labels.npy."""
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError), match=path.name) as info:
        write_store(
            convert(raw, card),
            card,
            DATASET,
            tmp_path / "bad.zarr",
            split_policy="seeded",
            seed=0,
            fractions=(0.5, 0.25, 0.25),
        )
    assert "patch 3" in str(info.value)
    assert not (tmp_path / "bad.zarr").exists()
