"""The TNBC converter (`tnbc`) on a tiny tree in the TNBC_NucleiSegmentation.zip layout."""

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
from tests.data.raw_layouts import TNBC as layout

DATASET = "TNBC"
STEMS = [stem for stems in layout.FILES.values() for stem in stems]


@pytest.fixture
def card() -> dict:
    """The TNBC card of config/datasets.yaml, num_images set to the tiny tree's size."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(STEMS)
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
    """The card names this converter, the authors' split list and the checksummed zip."""
    assert card["converter"] == "tnbc" and converter_version("tnbc") >= 1
    assert card["split_list"]["file"] == "TNBC.json"
    assert card["sources"][0]["filename"] == "TNBC_NucleiSegmentation.zip"


def test_ids_groups_no_official_split(raw, card):
    """Ids are the original stems (e.g. 01_2); group = patient; __MACOSX is ignored."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == STEMS
    assert [s.group_id for s in samples] == ["01", "01", "02", "03", "03"]
    assert all(s.official_split is None for s in samples)
    assert samples[1].source_file == f"{layout.RELEASE}/Slide_01/01_2.png"


def test_masks_binarised(raw, card):
    """Mask = (GT > 0) as 0/1; the drawn nucleus box is 1."""
    samples = {s.sample_id: s for s in convert(raw, card)}
    stem, box = layout.KNOWN
    assert np.all(samples[stem].mask[box] == 1) and samples[stem].mask[0, 0] == 0
    for s in samples.values():
        gt = np.asarray(
            Image.open(raw / layout.RELEASE / f"GT_{s.group_id}" / f"{s.sample_id}.png")
        )
        assert set(np.unique(gt).tolist()) == {0, 255}
        assert np.array_equal(s.mask, (gt > 0).astype(np.uint8))
    assert set(np.unique(np.concatenate([s.mask.ravel() for s in samples.values()]))) == {0, 1}


def test_alpha_dropped(raw, card):
    """The RGBA slides become their RGB channels."""
    sample = convert(raw, card)[2]
    rgba = np.asarray(Image.open(raw / layout.RELEASE / "Slide_02" / "02_1.png"))
    assert rgba.shape[2] == 4
    assert np.array_equal(sample.image, rgba[..., :3])


def test_missing_gt(raw, card):
    """An image without its GT file is reported with the missing file."""
    (raw / layout.RELEASE / "GT_03" / "03_2.png").unlink()
    with pytest.raises(ConversionError, match=r"GT_03/03_2\.png"):
        convert(raw, card)


def test_store_and_corrupt_mask(raw, card, tmp_path):
    """The tree converts into a store; a GT of the wrong size fails naming the file."""
    write_store(
        convert(raw, card),
        card,
        DATASET,
        tmp_path / "ok.zarr",
        split_policy="seeded",
        seed=0,
        fractions=(0.6, 0.2, 0.2),
    )
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError)) as err:
        write_store(
            get_converter("tnbc")(raw, card),
            card,
            DATASET,
            tmp_path / "bad.zarr",
            split_policy="seeded",
            seed=0,
            fractions=(0.6, 0.2, 0.2),
        )
    assert f"GT_02/{path.name}" in str(err.value)


def test_missing_layout(tmp_path, card):
    """A folder without Slide_XX folders says what to unpack."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="TNBC_NucleiSegmentation"):
        convert(tmp_path / "empty", card)
