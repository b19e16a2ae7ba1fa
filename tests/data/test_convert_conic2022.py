"""CoNIC2022 quirks (converter `conic2022`, npy release): class channel, source-image groups."""

from __future__ import annotations

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import CoNIC2022 as layout
from tests.data.raw_layouts import convert

DATASET = "CoNIC2022"


def test_samples(raw, card):
    """Authors' ids, class channel as mask, source-image groups, no official split."""
    samples = convert(raw, card)
    images, labels = layout.arrays()
    assert [s.sample_id for s in samples] == ["0000", "0001", "0002", "0003", "0004", "0005"]
    assert [s.group_id for s in samples] == [
        "consep_1",
        "consep_1",
        "crag_2",
        "crag_2",
        "glas_3",
        "pannuke_4",
    ]
    assert all(s.official_split is None for s in samples)
    for i, s in enumerate(samples):
        assert np.array_equal(s.image, images[i])
        assert s.mask.dtype == np.uint8 and s.mask.shape == (64, 64)
        assert np.all(s.mask[layout.NUCLEUS_BOX] == layout.NUCLEUS_CLASS[i])
        assert np.all(s.mask[layout.SECOND_BOX] == 2)
        assert np.array_equal(s.mask, labels[i, :, :, 1])
        assert s.mask[0, 0] == 0 and s.mask[63, 63] == 0
        assert s.source_file == f"{layout.FOLDER}/images.npy"
    assert set(np.unique(np.stack([s.mask for s in samples])).tolist()) == set(range(7))


def test_release_at_top_level(tmp_path, card):
    """The arrays may also sit directly in the raw folder."""
    layout.make_raw(tmp_path / "x", card)
    (tmp_path / "x" / layout.FOLDER).rename(tmp_path / "flat")
    assert [s.sample_id for s in convert(tmp_path / "flat", card)][-1] == "0005"


def test_missing_patch_info(raw, card):
    """Without patch_info.csv the groups are unknown: a clear error naming the file."""
    (raw / layout.FOLDER / "patch_info.csv").unlink()
    with pytest.raises(ConversionError, match=r"patch_info\.csv"):
        convert(raw, card)
