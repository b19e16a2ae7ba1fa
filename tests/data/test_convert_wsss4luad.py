"""The WSSS4LUAD converter (`wsss4luad`) on a tiny tree in the validation/test release layout."""

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
from tests.data.raw_layouts import WSSS4LUAD as layout

DATASET = "WSSS4LUAD"
SOURCES = [
    "2.validation/img/1.png",
    "2.validation/img/10.png",
    "2.validation/img/2.png",
    "3.testing/img/1.png",
    "3.testing/img/2.png",
]


@pytest.fixture
def card() -> dict:
    """The WSSS4LUAD card of config/datasets.yaml, num_images set to the tiny tree's size."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(SOURCES)
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
    """The card names this converter, the authors' split list and the manual drops."""
    assert card["converter"] == "wsss4luad" and converter_version("wsss4luad") >= 1
    assert card["split_list"]["file"] == "WSSS4LUAD.json"
    assert card["classes"][0] == "tumour_epithelium" and card["classes"][3] == "background"
    assert {s["kind"] for s in card["sources"]} == {"manual"}


def test_ids_follow_the_authors_running_index(raw, card):
    """sample_{k:06d} over validation then testing, files in Python sorted() order."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [f"sample_{k:06d}" for k in range(5)]
    assert [s.source_file for s in samples] == SOURCES
    assert [s.official_split for s in samples] == ["val"] * 3 + ["test"] * 2
    assert len({s.group_id for s in samples}) == 5
    assert samples[1].group_id == "2.validation/10"


def test_palette_colours_to_classes(raw, card):
    """Tumour 0, stroma 1, normal 2, background 3 at the hand-drawn places."""
    first = convert(raw, card)[0]
    assert first.mask[0, 0] == 0
    for k, name in enumerate(("stroma", "normal", "background"), start=1):
        assert np.all(first.mask[layout.KNOWN[name]] == k)
    assert set(np.unique(first.mask).tolist()) == {0, 1, 2, 3}
    for s in convert(raw, card):
        palette = np.asarray(Image.open(raw / s.source_file.replace("/img/", "/mask/")))
        assert np.array_equal(s.mask, palette)  # palette index == class here


def test_rgb_mask_and_unknown_colour(raw, card):
    """An RGB mask is mapped by colour; unknown colours become background (3) with a warning."""
    path = raw / "3.testing" / "mask" / "1.png"
    expected = np.asarray(Image.open(path)).copy()
    rgb = np.asarray(Image.open(path).convert("RGB")).copy()
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb, "RGB").save(path)
    with pytest.warns(UserWarning, match="unknown colours"):
        sample = convert(raw, card)[3]
    expected[0, 0] = 3
    assert np.array_equal(sample.mask, expected)
    assert set(np.unique(expected[:, 1:]).tolist()) == {0, 1, 2, 3}


def test_grey_mask_refused(raw, card):
    """A grey (mode L) mask is not the release format and is refused, naming the file."""
    path = raw / "2.validation" / "mask" / "2.png"
    Image.fromarray(np.asarray(Image.open(path)), "L").save(path)
    with pytest.raises(ConversionError, match=r"2\.validation/mask/2\.png"):
        convert(raw, card)


def test_images_rgb(raw, card):
    """Images are the RGB files unchanged."""
    sample = convert(raw, card)[2]
    assert np.array_equal(sample.image, np.asarray(Image.open(raw / SOURCES[2])))


def test_unpaired_files(raw, card):
    """An image without a mask, or a mask without an image, raises ConversionError."""
    (raw / "2.validation" / "mask" / "10.png").unlink()
    with pytest.raises(ConversionError, match=r"10\.png"):
        convert(raw, card)
    (raw / "2.validation" / "img" / "10.png").unlink()
    (raw / "3.testing" / "img" / "2.png").unlink()
    with pytest.raises(ConversionError, match=r"3\.testing/mask/2\.png"):
        convert(raw, card)


def test_store_and_corrupt_mask(raw, card, tmp_path):
    """The tree converts into a store; a truncated mask fails naming the file."""
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
            get_converter("wsss4luad")(raw, card),
            card,
            DATASET,
            tmp_path / "bad.zarr",
            split_policy="seeded",
            seed=0,
            fractions=(0.6, 0.2, 0.2),
        )
    assert f"3.testing/mask/{path.name}" in str(err.value)


def test_missing_layout(tmp_path, card):
    """A folder without 2.validation/ and 3.testing/ says what to unpack."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match=r"2\.validation/img"):
        convert(tmp_path / "empty", card)
