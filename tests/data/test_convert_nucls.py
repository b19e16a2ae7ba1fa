"""NuCLS converter on a tiny raw tree in the release layout (tests/data/raw_layouts/NuCLS)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.registry import load_yaml
from tests.data.raw_layouts import NuCLS as layout

DATASET = "NuCLS"


def load_card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's count."""
    card = copy.deepcopy(load_yaml(ROOT / "config/datasets.yaml")[DATASET])
    card["num_images"] = len(layout.FOVS)
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
    """The card points at the nucls module; 13 classes, code k = class k."""
    assert card["converter"] == "nucls"
    assert card["split_list"]["file"] == "NuCLS.json"
    assert len(card["classes"]) == 13
    assert card["classes"][1] == "tumor" and card["classes"][12] == "eosinophil"


def test_samples(raw, card):
    """Original stems as ids, channel-0 codes with 253/99 -> 0, fold-1 split, patient groups."""
    samples = convert(raw, card)
    order = sorted(range(len(layout.FOVS)), key=lambda i: layout.FOVS[i])
    assert [s.sample_id for s in samples] == [layout.FOVS[i] for i in order]
    for s, i in zip(samples, order, strict=True):
        slide = layout.FOVS[i].split("_")[0]
        assert s.official_split == layout.FOLD1[slide]
        assert s.group_id == slide.removesuffix("-DX1")
        assert s.source_file == f"{layout.FOLDER}/rgb/{layout.FOVS[i]}.png"
        assert s.image.shape == (*layout.size_of(layout.FOVS[i]), 3)
        assert np.array_equal(s.image, layout.rgb_array(i))
        assert s.mask.dtype == np.uint8 and s.mask.shape == s.image.shape[:2]
        assert np.all(s.mask[layout.NUCLEUS_BOX] == layout.CODES[i])
        assert np.all(s.mask[layout.UNLABELED_BOX] == 0)  # unlabeled (99) -> 0
        assert s.mask[layout.BORDER + 1, -layout.BORDER - 1] == 0  # FOV (253) -> 0
        assert s.mask[0, 0] == 0  # outside the FOV
        assert set(np.unique(s.mask).tolist()) == {0, layout.CODES[i]}
    assert {s.group_id for s in samples} == {"TCGA-E2-A1LH", "TCGA-BH-A0BL", "TCGA-OL-A66P"}


def test_rgba_image_drops_alpha(raw, card):
    """An RGBA rgb/ PNG converts to its RGB channels."""
    path = raw / layout.FOLDER / "rgb" / f"{layout.FOVS[3]}.png"
    rgb = layout.rgb_array(3)
    alpha = np.full((*rgb.shape[:2], 1), 128, np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2)).save(path)
    sample = next(s for s in convert(raw, card) if s.sample_id == layout.FOVS[3])
    assert sample.image.shape == (*rgb.shape[:2], 3)
    assert np.array_equal(sample.image, rgb)


def test_without_split_files(raw, card):
    """Without train_test_splits/ there is no official split."""
    shutil.rmtree(raw / layout.FOLDER / "train_test_splits")
    assert all(s.official_split is None for s in convert(raw, card))


def test_missing_mask(raw, card):
    """An rgb/ image without its mask names the missing file."""
    (raw / layout.FOLDER / "mask" / f"{layout.FOVS[1]}.png").unlink()
    with pytest.raises(ConversionError, match="has no mask file"):
        convert(raw, card)


def test_store_official(raw, card, tmp_path):
    """The samples pass store validation; fold-1 test slides stay test."""
    out = tmp_path / "NuCLS.zarr"
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
    tests = {m["id"] for m in meta if m["split"] == "test"}
    assert tests == {f for f in layout.FOVS if layout.FOLD1[f.split("_")[0]] == "test"}


def test_store_paper_split(raw, card, tmp_path):
    """The authors' split list entries (Data/NuCLS/images/<stem>.png) map by stem."""
    listing = {
        "num_classes": len(card["classes"]),
        "data": {
            split: [{"image_path": f"Data/NuCLS/images/{s}.png", "mask_path": ""} for s in stems]
            for split, stems in {
                "train": layout.FOVS[:3],
                "val": layout.FOVS[3:4],
                "test": layout.FOVS[4:],
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
        f: ("train", "train", "train", "val", "test")[i] for i, f in enumerate(layout.FOVS)
    }


def test_corrupt_mask_fails(raw, card, tmp_path):
    """An unknown class code stops the conversion, naming the mask file."""
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
    assert "42" in str(info.value)
    assert not (tmp_path / "bad.zarr").exists()
