"""NuCLS quirks (converter `nucls`): channel-0 codes with FOV/unlabeled -> 0, fold-1 split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import NuCLS as layout
from tests.data.raw_layouts import convert

DATASET = "NuCLS"


def test_samples(raw, card):
    """Original stems as ids, channel-0 codes with 253/99 -> 0, fold-1 split, patient groups."""
    samples = convert(raw, card)
    order = sorted(range(len(layout.FOVS)), key=lambda i: layout.FOVS[i])
    assert [s.sample_id for s in samples] == [layout.FOVS[i] for i in order]
    for s, i in zip(samples, order, strict=True):
        slide = layout.FOVS[i].split("_")[0]
        assert s.official_split == layout.FOLD1[slide]
        assert s.group_id == slide.removesuffix("-DX1")
        assert s.source_file == f"{layout.FOLDER}/rgb/{layout.FOVS[i]}.png"
        assert s.image.shape == (*layout.size_of(layout.FOVS[i]), 3)
        assert np.array_equal(s.image, layout.rgb_array(i))
        assert s.mask.dtype == np.uint8 and s.mask.shape == s.image.shape[:2]
        assert np.all(s.mask[layout.NUCLEUS_BOX] == layout.CODES[i])
        assert np.all(s.mask[layout.UNLABELED_BOX] == 0)  # unlabeled (99) -> 0
        assert s.mask[layout.BORDER + 1, -layout.BORDER - 1] == 0  # FOV (253) -> 0
        assert s.mask[0, 0] == 0  # outside the FOV
        assert set(np.unique(s.mask).tolist()) == {0, layout.CODES[i]}
    assert {s.group_id for s in samples} == {"TCGA-E2-A1LH", "TCGA-BH-A0BL", "TCGA-OL-A66P"}


def test_without_split_files(raw, card):
    """Without train_test_splits/ there is no official split."""
    shutil.rmtree(raw / layout.FOLDER / "train_test_splits")
    assert all(s.official_split is None for s in convert(raw, card))


def test_missing_mask(raw, card):
    """An rgb/ image without its mask names the missing file."""
    (raw / layout.FOLDER / "mask" / f"{layout.FOVS[1]}.png").unlink()
    with pytest.raises(ConversionError, match="has no mask file"):
        convert(raw, card)
