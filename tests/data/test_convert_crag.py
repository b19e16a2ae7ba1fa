"""CRAG quirks (converter `crag`, CRAG v2 layout): valid/ is the test set, instances -> gland."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import CRAG as layout
from tests.data.raw_layouts import convert

DATASET = "CRAG"
IDS = ["train_1", "train_2", "train_3", "test_1", "test_2"]


def test_ids_splits_groups(raw, card):
    """Original stems as ids, valid/ -> test, one group per image."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == IDS
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == IDS
    assert samples[3].source_file == "CRAG/valid/Images/test_1.png"


def test_known_instances_become_gland(raw, card):
    """Every instance of train_1, and the 16-bit ids of test_1, become class 1."""
    samples = {s.sample_id: s for s in convert(raw, card)}
    assert all(set(np.unique(s.mask).tolist()) == {0, 1} for s in samples.values())
    known = samples[layout.KNOWN["sample"]]
    expected = np.zeros(known.mask.shape, np.uint8)
    for y0, y1, x0, x1 in layout.KNOWN["glands"]:
        expected[y0:y1, x0:x1] = layout.KNOWN["class"]
    assert np.array_equal(known.mask, expected)
    wide = np.asarray(Image.open(raw / "CRAG/valid/Annotation" / f"{layout.WIDE_SAMPLE}.png"))
    assert wide.max() > 255
    assert np.array_equal(samples[layout.WIDE_SAMPLE].mask, (wide > 0).astype(np.uint8))


def test_missing_annotation_is_an_error(raw, card):
    """An image without its annotation is refused, naming the image."""
    (raw / "CRAG/train/Annotation/train_3.png").unlink()
    with pytest.raises(ConversionError, match=r"train_3\.png.*no annotation file"):
        convert(raw, card)


def test_foreground_ignores_alpha(tmp_path):
    """An RGBA label counts its colour channels only: opaque black stays background."""
    from densebench.data.converters._common import foreground  # CRAG's label reader

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[2:4, 2:4, :3] = 255
    Image.fromarray(rgba).save(tmp_path / "label.png")
    fg = foreground(tmp_path / "label.png", DATASET, tmp_path)
    assert fg.sum() == 4 and fg[2:4, 2:4].all()
