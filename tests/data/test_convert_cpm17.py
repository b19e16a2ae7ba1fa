"""CPM-17 quirks (converter `cpm17`, Google Drive layout): authors' ids, stems repeat per split."""

from __future__ import annotations

import numpy as np

from tests.data.raw_layouts import convert
from tests.data.raw_layouts import cpm17 as layout

DATASET = "cpm17"
EXPECTED = [
    ("cpm17_train_sample_000000", "train", "image_00"),
    ("cpm17_train_sample_000001", "train", "image_01"),
    ("cpm17_train_sample_000002", "train", "image_02"),
    ("cpm17_test_sample_000003", "test", "image_00"),
    ("cpm17_test_sample_000004", "test", "image_01"),
]


def test_ids_splits_groups(raw, card):
    """Authors' sample ids, official train/test, groups unique across folders."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [e[0] for e in EXPECTED]
    assert [s.official_split for s in samples] == ["train"] * 3 + ["test"] * 2
    assert [s.group_id for s in samples] == [f"{folder}_{stem}" for _, folder, stem in EXPECTED]
    assert [s.source_file for s in samples] == [
        f"cpm17/{folder}/Images/{stem}.png" for _, folder, stem in EXPECTED
    ]


def test_mask_is_binary_nuclei(raw, card):
    """Both hand-drawn instances become 1, background 0."""
    for sample in convert(raw, card):
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.SHAPE
        assert np.all(sample.mask[layout.NUCLEUS] == 1) and np.all(sample.mask[layout.SECOND] == 1)
        assert int(sample.mask.sum()) == 200 and sample.mask[0, 0] == 0


def test_nested_download_folder_is_found(raw, card, tmp_path):
    """The tree is found one level deeper too (a Drive zip unpacked into its own folder)."""
    nested = tmp_path / "nested"
    (nested / "cpm17-20240101T000000Z-001").mkdir(parents=True)
    (raw / "cpm17").rename(nested / "cpm17-20240101T000000Z-001" / "cpm17")
    assert [s.sample_id for s in convert(nested, card)] == [e[0] for e in EXPECTED]
