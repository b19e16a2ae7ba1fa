"""CoNSeP quirks (converter `consep`, consep.zip layout): authors' running ids, raw type map."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import loadmat

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import CoNSeP as layout
from tests.data.raw_layouts import convert

DATASET = "CoNSeP"
# Authors' order: one running index, Train then Test, plain string order within a folder.
EXPECTED = [
    ("consep_Train_sample_000000", "Train", "train_1"),
    ("consep_Train_sample_000001", "Train", "train_10"),
    ("consep_Train_sample_000002", "Train", "train_2"),
    ("consep_Test_sample_000003", "Test", "test_1"),
    ("consep_Test_sample_000004", "Test", "test_2"),
]


def test_ids_splits_groups(raw, card):
    """Authors' sample ids, official Train/Test split, stems as groups, provenance."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [e[0] for e in EXPECTED]
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == [e[2] for e in EXPECTED]
    assert [s.source_file for s in samples] == [
        f"CoNSeP/{folder}/Images/{stem}.png" for _, folder, stem in EXPECTED
    ]


def test_mask_is_raw_type_map(raw, card):
    """The hand-drawn nuclei carry their raw type (0..7, no merging); the rest is background."""
    for sample, (_, folder, stem) in zip(convert(raw, card), EXPECTED, strict=True):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPE
        assert np.all(sample.mask[layout.NUCLEUS] == layout.TYPES[stem])
        assert np.all(sample.mask[layout.SECOND] == layout.SECOND_TYPE)
        assert sample.mask[0, 0] == 0 and int((sample.mask > 0).sum()) == 12 * 16 + 12 * 12
        mat = loadmat(raw / "CoNSeP" / folder / "Labels" / f"{stem}.mat")
        assert np.array_equal(sample.mask, mat["type_map"])


def test_missing_label_is_named(raw, card):
    """An image without its .mat label fails naming the image."""
    (raw / "CoNSeP" / "Train" / "Labels" / "train_2.mat").unlink()
    with pytest.raises(ConversionError, match=r"train_2\.png.*no label file"):
        convert(raw, card)
