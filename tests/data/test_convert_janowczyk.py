"""The Janowczyk nuclei converter (`janowczyk`) on a tiny tree in the nuclei.tgz layout."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import ConversionError, Sample, converter_version, get_converter
from densebench.data.store import ValidationError, write_store
from densebench.registry import load_yaml, records
from tests.data.raw_layouts import Janowczyk as layout

DATASET = "Janowczyk"


@pytest.fixture
def card() -> dict:
    """The Janowczyk card of config/datasets.yaml, num_images set to the tiny tree's size."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(layout.BASES)
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
    """The card names this converter, the authors' split list and the checksummed archive."""
    assert card["converter"] == "janowczyk" and converter_version("janowczyk") >= 1
    assert card["split_list"]["file"] == "Janowczyk.json"
    assert card["sources"][0]["filename"] == "nuclei.tgz" and card["sources"][0]["sha256"]


def test_ids_groups_no_official_split(raw, card):
    """Ids are the base names (natural order); group = patient prefix; no official split."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == list(layout.BASES)
    assert [s.group_id for s in samples] == ["9036", "12908", "13459", "13459"]
    assert all(s.official_split is None for s in samples)
    assert samples[1].source_file == "12908_500_f00021_original.tif"


def test_masks_binarised(raw, card):
    """Mask = (mask PNG > 0) as 0/1; the drawn nucleus is 1, its surroundings 0."""
    samples = convert(raw, card)
    base, box = layout.KNOWN
    first = next(s for s in samples if s.sample_id == base)
    assert np.all(first.mask[box] == 1) and first.mask[0, 0] == 0
    for s in samples:
        png = np.asarray(Image.open(raw / f"{s.sample_id}_mask.png"))
        assert set(np.unique(png).tolist()) == {0, 255}
        assert s.mask.dtype == np.uint8 and np.array_equal(s.mask, (png > 0).astype(np.uint8))


def test_images_rgb_from_tif(raw, card):
    """Images are the TIFF's RGB pixels."""
    samples = convert(raw, card)
    tif = np.asarray(Image.open(raw / f"{layout.BASES[3]}_original.tif"))
    assert np.array_equal(samples[3].image, tif) and samples[3].image.shape == (96, 96, 3)


def test_image_without_mask_is_skipped(raw, card):
    """Like the authors' script, an image without its mask is left out, with a warning."""
    (raw / f"{layout.BASES[1]}_mask.png").unlink()
    with pytest.warns(UserWarning, match=layout.BASES[1]):
        samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [layout.BASES[i] for i in (0, 2, 3)]


def test_store_and_corrupt_mask(raw, card, tmp_path):
    """The tree converts into a store; a truncated mask fails naming the file."""
    write_store(
        convert(raw, card),
        card,
        DATASET,
        tmp_path / "ok.zarr",
        split_policy="seeded",
        seed=0,
        fractions=(0.5, 0.25, 0.25),
    )
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError)) as err:
        write_store(
            get_converter("janowczyk")(raw, card),
            card,
            DATASET,
            tmp_path / "bad.zarr",
            split_policy="seeded",
            seed=0,
            fractions=(0.5, 0.25, 0.25),
        )
    assert path.name in str(err.value) and "Remedy" in str(err.value)


def test_missing_layout(tmp_path, card):
    """A folder without *_original.tif files says what to unpack."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match=r"nuclei\.tgz"):
        convert(tmp_path / "empty", card)
