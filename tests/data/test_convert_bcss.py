"""The real-BCSS converter (`bcss`) on a tiny tree in the Google Drive layout."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import ConversionError, Sample, converter_version, get_converter
from densebench.data.store import ValidationError, write_store
from densebench.registry import load_yaml, records
from tests.data.raw_layouts import BCSS as layout

DATASET = "BCSS"


@pytest.fixture
def card() -> dict:
    """The BCSS card of config/datasets.yaml, num_images set to the tiny tree's size."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(layout.STEMS)
    return card


@pytest.fixture
def raw(tmp_path: Path, card: dict) -> Path:
    """A fresh tiny raw tree."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def convert(raw: Path, card: dict) -> list[Sample]:
    """Run the card's converter to completion."""
    return list(get_converter(card["converter"])(raw, card))


def test_card(card):
    """The card names this converter and the authors' split list."""
    assert card["converter"] == "bcss" and converter_version("bcss") >= 1
    assert card["split_list"]["file"] == "BCSS.json"
    assert len(card["classes"]) == 22 and card["classes"][20] == "dcis"


def test_ids_groups_and_official_split(raw, card):
    """Ids are the file stems; groups the TCGA case; sites E2/OL are the official test."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == list(layout.STEMS)
    assert [s.group_id for s in samples] == [stem[:12] for stem in layout.STEMS]
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert samples[0].source_file == (
        f"{layout.RELEASE}/rgbs_colorNormalized/{layout.STEMS[0]}.png"
    )


def test_masks_are_raw_codes(raw, card):
    """Mask = GT codes unchanged: 0 outside the ROI, the drawn dcis box is 20."""
    samples = {s.sample_id: s for s in convert(raw, card)}
    stem, box, code = layout.KNOWN
    mask = samples[stem].mask
    assert mask.dtype == np.uint8 and np.all(mask[box] == code)
    assert mask[0, 0] == 0 and mask[layout.BORDER, layout.BORDER] == 1
    for s in samples.values():
        raw_mask = np.asarray(Image.open(raw / layout.RELEASE / "masks" / f"{s.sample_id}.png"))
        assert np.array_equal(s.mask, raw_mask)
        assert s.image.shape == (*raw_mask.shape, 3)


def test_images_rgb(raw, card):
    """Images are the RGB files unchanged; an alpha channel is dropped."""
    path = raw / layout.RELEASE / "rgbs_colorNormalized" / f"{layout.STEMS[2]}.png"
    rgb = np.asarray(Image.open(path))
    alpha = np.full((*rgb.shape[:2], 1), 9, np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(path)
    sample = convert(raw, card)[2]
    assert np.array_equal(sample.image, rgb)


def test_images_folder_and_nesting(raw, card):
    """The authors' images/ folder name is accepted, also one level deeper."""
    nested = raw / "BCSS" / layout.RELEASE
    nested.parent.mkdir()
    shutil.move(raw / layout.RELEASE, nested)
    (nested / "rgbs_colorNormalized").rename(nested / "images")
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == list(layout.STEMS)
    assert samples[0].source_file.startswith(f"BCSS/{layout.RELEASE}/images/")


def test_store_and_corrupt_mask(raw, card, tmp_path):
    """The tree converts into a store; a mask with code 22 fails validation naming the file."""
    store = tmp_path / "ok.zarr"
    write_store(
        convert(raw, card),
        card,
        DATASET,
        store,
        split_policy="official",
        seed=0,
        fractions=(0.7, 0.2, 0.1),
    )
    assert store.is_dir()
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError)) as err:
        write_store(
            get_converter("bcss")(raw, card),
            card,
            DATASET,
            tmp_path / "bad.zarr",
            split_policy="seeded",
            seed=0,
            fractions=(0.6, 0.2, 0.2),
        )
    assert path.name in str(err.value) and "22" in str(err.value)


def test_missing_mask_and_layout(raw, card, tmp_path):
    """A missing mask and an empty raw folder raise ConversionError with a remedy."""
    (raw / layout.RELEASE / "masks" / f"{layout.STEMS[3]}.png").unlink()
    with pytest.raises(ConversionError, match=layout.STEMS[3]):
        convert(raw, card)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="Remedy"):
        convert(tmp_path / "empty", card)
