"""PanNuke converter on a tiny raw tree in the release layout (tests/data/raw_layouts/PanNuke)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.registry import load_yaml
from tests.data.raw_layouts import PanNuke as layout

DATASET = "PanNuke"
COUNT = 3 * layout.PER_FOLD


def load_card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's count."""
    card = copy.deepcopy(load_yaml(ROOT / "config/datasets.yaml")[DATASET])
    card["num_images"] = COUNT
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
    """The card points at the pannuke module, 6 classes with background last."""
    assert card["converter"] == "pannuke"
    assert card["split_list"]["file"] == "PanNuke.json"
    assert card["classes"][5] == "background" and len(card["classes"]) == 6
    assert [s["filename"] for s in card["sources"]] == ["fold_1.zip", "fold_2.zip", "fold_3.zip"]


def test_samples(raw, card):
    """Running 5-digit ids across folds, argmax masks (5 = bg), fold splits, uint8 RGB."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [f"{i:05d}" for i in range(COUNT)]
    assert [s.official_split for s in samples] == ["train"] * 2 + ["val"] * 2 + ["test"] * 2
    assert [s.group_id for s in samples] == [s.sample_id for s in samples]
    for n, s in enumerate(samples):
        fold, j = n // layout.PER_FOLD + 1, n % layout.PER_FOLD
        images, masks = layout.arrays(fold)
        assert s.source_file == f"Fold {fold}/images/fold{fold}/images.npy"
        assert s.image.dtype == np.uint8 and s.image.shape == (64, 64, 3)
        assert np.array_equal(s.image, images[j].astype(np.uint8))
        assert s.mask.dtype == np.uint8
        assert np.all(s.mask[layout.NUCLEUS_BOX] == layout.TYPE_OF[(fold, j)])
        assert np.all(s.mask[layout.OVERLAP_BOX] == 2)  # larger instance id wins
        assert np.all(s.mask[layout.VOID_BOX] == 0)  # no channel set -> 0, as the paper
        assert s.mask[40, 5] == 5 and s.mask[63, 63] == 5
        assert np.array_equal(s.mask, np.argmax(masks[j], axis=-1))
    assert set(np.unique(np.stack([s.mask for s in samples])).tolist()) == set(range(6))


def test_fold_folder_casing(raw, card):
    """Inner folders named 'Fold1' (as in the authors' script) work too."""
    for fold in (1, 2, 3):
        for kind in ("images", "masks"):
            inner = layout.fold_dir(raw, fold) / kind / f"fold{fold}"
            inner.rename(inner.with_name(f"Fold{fold}"))
    samples = convert(raw, card)
    assert [s.official_split for s in samples][-1] == "test"
    assert samples[2].source_file == "Fold 2/images/Fold2/images.npy"


def test_missing_masks(raw, card):
    """A fold without masks.npy names the fold and the file to restore."""
    (layout.fold_dir(raw, 3) / "masks" / "fold3" / "masks.npy").unlink()
    with pytest.raises(ConversionError, match=r"fold 3 has images but no masks\.npy"):
        convert(raw, card)


def test_store_official(raw, card, tmp_path):
    """The samples pass store validation; the official policy keeps the fold splits."""
    out = tmp_path / "PanNuke.zarr"
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
    assert [m["split"] for m in meta] == ["train"] * 2 + ["val"] * 2 + ["test"] * 2


def test_store_paper_split(raw, card, tmp_path):
    """The authors' split list entries (Data/PanNuke/images/06876.png) map by stem."""
    listing = {
        "num_classes": len(card["classes"]),
        "data": {
            split: [{"image_path": f"Data/PanNuke/images/{s}.png", "mask_path": ""} for s in stems]
            for split, stems in {
                "train": ["00000", "00005"],
                "val": ["00002", "00003"],
                "test": ["00001", "00004"],
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
        "00000": "train",
        "00001": "test",
        "00002": "val",
        "00003": "val",
        "00004": "test",
        "00005": "train",
    }


def test_corrupt_mask_fails(raw, card, tmp_path):
    """A truncated masks.npy stops the conversion, naming the file."""
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
    assert "Fold 2" in str(info.value)
    assert not (tmp_path / "bad.zarr").exists()
