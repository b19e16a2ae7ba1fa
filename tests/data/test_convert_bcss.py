"""BCSS quirks (converter `bcss`, Google Drive layout): raw GT codes as classes, site split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import BCSS as layout
from tests.data.raw_layouts import convert

DATASET = "BCSS"


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


def test_images_folder_and_nesting(raw, card):
    """The authors' images/ folder name is accepted, also one level deeper."""
    nested = raw / "BCSS" / layout.RELEASE
    nested.parent.mkdir()
    shutil.move(raw / layout.RELEASE, nested)
    (nested / "rgbs_colorNormalized").rename(nested / "images")
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == list(layout.STEMS)
    assert samples[0].source_file.startswith(f"BCSS/{layout.RELEASE}/images/")


def test_missing_mask_is_named(raw, card):
    """An image without its mask raises ConversionError naming it."""
    (raw / layout.RELEASE / "masks" / f"{layout.STEMS[3]}.png").unlink()
    with pytest.raises(ConversionError, match=layout.STEMS[3]):
        convert(raw, card)
