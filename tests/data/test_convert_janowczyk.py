"""Janowczyk quirks (converter `janowczyk`, flat nuclei.tgz): patient groups, skipped images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import Janowczyk as layout
from tests.data.raw_layouts import convert

DATASET = "Janowczyk"


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


def test_image_without_mask_is_skipped(raw, card):
    """Like the authors' script, an image without its mask is left out, with a warning."""
    (raw / f"{layout.BASES[1]}_mask.png").unlink()
    with pytest.warns(UserWarning, match=layout.BASES[1]):
        samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [layout.BASES[i] for i in (0, 2, 3)]


def test_missing_layout(tmp_path, card):
    """A folder without *_original.tif files says what to unpack."""
    with pytest.raises(ConversionError, match=r"nuclei\.tgz"):
        convert(tmp_path, card)
