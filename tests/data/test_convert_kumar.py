"""Kumar quirks (converter `kumar`, Google Drive layout): ids over three folders, TCGA groups."""

from __future__ import annotations

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import convert
from tests.data.raw_layouts import kumar as layout

DATASET = "kumar"
# Authors' order: one running index over train, test_same, test_diff; plain string order inside.
EXPECTED = [
    ("kumar_train_sample_000000", "train", "TCGA-18-5592-01Z-00-DX1"),
    ("kumar_train_sample_000001", "train", "TCGA-A7-A13E-01Z-00-DX1"),
    ("kumar_train_sample_000002", "train", "TCGA-A7-A13E-01Z-00-DX2"),
    ("kumar_test_same_sample_000003", "test_same", "TCGA-21-5784-01Z-00-DX1"),
    ("kumar_test_diff_sample_000004", "test_diff", "TCGA-AY-A8YK-01A-01-TS1"),
    ("kumar_test_diff_sample_000005", "test_diff", "TCGA-KB-A93J-01A-01-TS1"),
]


def test_ids_splits_groups(raw, card):
    """Authors' sample ids, train -> train and both test folders -> test, TCGA patient groups."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [e[0] for e in EXPECTED]
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 3
    assert [s.group_id for s in samples] == [
        "TCGA-18-5592",
        "TCGA-A7-A13E",
        "TCGA-A7-A13E",
        "TCGA-21-5784",
        "TCGA-AY-A8YK",
        "TCGA-KB-A93J",
    ]
    assert [s.source_file for s in samples] == [
        f"kumar/{folder}/Images/{stem}.tif" for _, folder, stem in EXPECTED
    ]


def test_mask_is_binary_nuclei(raw, card):
    """Every instance (int32 or double inst_map) becomes 1, background 0."""
    for sample in convert(raw, card):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPE
        assert np.all(sample.mask[layout.NUCLEUS] == 1) and np.all(sample.mask[layout.SECOND] == 1)
        assert int(sample.mask.sum()) == 10 * 14 + 10 * 8
        assert set(np.unique(sample.mask).tolist()) == {0, 1}


def test_missing_folder_is_named(raw, card):
    """A missing split folder would shift the authors' numbering: refused, naming the folder."""
    for path in sorted((raw / "kumar" / "test_same").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (raw / "kumar" / "test_same").rmdir()
    with pytest.raises(ConversionError, match=r"test_same/Images: folder is missing"):
        convert(raw, card)
