"""CPM-15 quirks (converter `cpm15`, Google Drive layout): authors' ids, binary nuclei, no split."""

from __future__ import annotations

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import convert
from tests.data.raw_layouts import cpm15 as layout
from tests.data.raw_layouts.CoNSeP import save_mat

DATASET = "cpm15"


def test_ids_no_split_stem_groups(raw, card):
    """Authors' sample ids in name order, no official split, one group per image."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [f"cpm15_semantic_sample_{i:06d}" for i in range(4)]
    assert all(s.official_split is None for s in samples)
    assert [s.group_id for s in samples] == layout.STEMS
    assert [s.source_file for s in samples] == [f"cpm15/Images/{s}.png" for s in layout.STEMS]


def test_mask_is_binary_nuclei(raw, card):
    """Both hand-drawn instances become 1, background 0, at each image's own size."""
    for sample, stem in zip(convert(raw, card), layout.STEMS, strict=True):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPES[stem]
        assert np.all(sample.mask[layout.NUCLEUS] == 1) and np.all(sample.mask[layout.SECOND] == 1)
        assert int(sample.mask.sum()) == 10 * 10 + 10 * 12


def test_wrong_key_is_named(raw, card):
    """A label without inst_map fails naming the key and the file."""
    path = raw / "cpm15" / "Labels" / "image_00.mat"
    save_mat({"type_map": np.zeros(layout.SHAPES["image_00"], np.int32)}, path)
    with pytest.raises(
        ConversionError, match=r"image_00\.mat: \.mat file has no variable 'inst_map'"
    ):
        convert(raw, card)
