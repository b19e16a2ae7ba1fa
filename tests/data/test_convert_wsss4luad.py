"""WSSS4LUAD quirks (converter `wsss4luad`): sorted() running ids, palette colours to classes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import WSSS4LUAD as layout
from tests.data.raw_layouts import convert

DATASET = "WSSS4LUAD"
SOURCES = [
    "2.validation/img/1.png",
    "2.validation/img/10.png",
    "2.validation/img/2.png",
    "3.testing/img/1.png",
    "3.testing/img/2.png",
]


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
    samples = convert(raw, card)
    assert samples[0].mask[0, 0] == 0
    for k, name in enumerate(("stroma", "normal", "background"), start=1):
        assert np.all(samples[0].mask[layout.KNOWN[name]] == k)
    assert set(np.unique(samples[0].mask).tolist()) == {0, 1, 2, 3}
    for s in samples:
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


def test_unpaired_files(raw, card):
    """An image without a mask, or a mask without an image, raises ConversionError."""
    (raw / "2.validation" / "mask" / "10.png").unlink()
    with pytest.raises(ConversionError, match=r"10\.png"):
        convert(raw, card)
    (raw / "2.validation" / "img" / "10.png").unlink()
    (raw / "3.testing" / "img" / "2.png").unlink()
    with pytest.raises(ConversionError, match=r"3\.testing/mask/2\.png"):
        convert(raw, card)


def test_missing_layout(tmp_path, card):
    """A folder without 2.validation/ and 3.testing/ says what to unpack."""
    with pytest.raises(ConversionError, match=r"2\.validation/img"):
        convert(tmp_path, card)
