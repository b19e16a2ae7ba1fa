"""TNBC quirks (converter `tnbc`, TNBC_NucleiSegmentation.zip): patient folders, __MACOSX junk."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import TNBC as layout
from tests.data.raw_layouts import convert

DATASET = "TNBC"
STEMS = [stem for stems in layout.FILES.values() for stem in stems]


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


def test_missing_gt(raw, card):
    """An image without its GT file is reported with the missing file."""
    (raw / layout.RELEASE / "GT_03" / "03_2.png").unlink()
    with pytest.raises(ConversionError, match=r"GT_03/03_2\.png"):
        convert(raw, card)


def test_missing_layout(tmp_path, card):
    """A folder without Slide_XX folders says what to unpack."""
    with pytest.raises(ConversionError, match="TNBC_NucleiSegmentation"):
        convert(tmp_path, card)
