"""RINGS quirks (converter `rings`, TRAIN.zip + TEST.zip): tumour over gland, patient groups."""

from __future__ import annotations

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import RINGS as layout
from tests.data.raw_layouts import convert

DATASET = "RINGS"
IDS = ["P1_D7_4_17_3", "P1_D7_4_17_12", "P2_F11_13_12_2", "P3_C11_5_10_2", "P6_E6_16_4_3"]


def test_ids_splits_groups(raw, card):
    """Original stems as ids (natural order), TRAIN/TEST splits, patient groups, 3 classes."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == IDS
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == ["P1", "P1", "P2", "P3", "P6"]
    assert samples[0].source_file == "TRAIN/IMAGES/P1_D7_4_17_3.png"
    assert set(np.unique(np.concatenate([s.mask.ravel() for s in samples])).tolist()) == {0, 1, 2}


def test_tumour_overrides_gland(raw, card):
    """Known gland and tumour boxes: 1 on gland only, 2 on all of the tumour box."""
    sample = next(s for s in convert(raw, card) if s.sample_id == layout.KNOWN["sample"])
    expected = np.zeros(sample.mask.shape, np.uint8)
    gy0, gy1, gx0, gx1 = layout.KNOWN["gland"]
    ty0, ty1, tx0, tx1 = layout.KNOWN["tumour"]
    expected[gy0:gy1, gx0:gx1] = layout.KNOWN["classes"]["gland"]
    expected[ty0:ty1, tx0:tx1] = layout.KNOWN["classes"]["tumour"]
    assert np.array_equal(sample.mask, expected)
    assert (sample.mask == 1).any() and (sample.mask == 2).any()


def test_missing_tumour_mask_is_an_error(raw, card):
    """An image without its tumour mask is refused, naming the image."""
    (raw / "TRAIN" / "MANUAL TUMOR" / "P2_F11_13_12_2.png").unlink()
    with pytest.raises(ConversionError, match=r"P2_F11_13_12_2\.png.*MANUAL TUMOR"):
        convert(raw, card)
