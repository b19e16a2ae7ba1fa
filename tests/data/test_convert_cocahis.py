"""CoCaHis quirks (converter `cocahis`, one HDF5 file): raw HE images, majority-vote masks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import CoCaHis as layout
from tests.data.raw_layouts import convert

DATASET = "CoCaHis"


def test_samples(raw, card):
    """Authors' ids, HE/raw images, majority-vote masks, official split, patient groups."""
    samples = convert(raw, card)
    images, masks = layout.arrays()
    assert [s.sample_id for s in samples] == [f"sample_{i:04d}" for i in range(5)]
    assert [s.official_split for s in samples] == layout.SPLITS
    assert [s.group_id for s in samples] == [f"patient_{p}" for p in layout.PATIENTS]
    for i, s in enumerate(samples):
        assert s.source_file == "CoCaHis.hdf5"
        assert np.array_equal(s.image, images[i])  # raw, not the stain-normalised sn1/sn2
        assert s.mask.dtype == np.uint8 and s.mask.shape == (48, 64)
        assert np.all(s.mask[layout.CANCER_BOX[i]] == 1)
        assert s.mask.sum() == masks[i].sum()  # majority vote, not GT1
        assert s.mask[47, 63] == 0


def test_bytes_attributes_and_bool_masks(raw, card):
    """Fixed-length byte attributes and boolean masks decode the same way."""
    with h5py.File(raw / layout.FILE_NAME, "r+") as f:
        f["HE"].attrs["train_test_split"] = np.array(layout.SPLITS, dtype="S5")
        f["HE"].attrs["patient_num"] = np.array(layout.PATIENTS, dtype=np.float64)
        vote = f["GT/GT_majority_vote"][()].astype(bool)
        del f["GT/GT_majority_vote"]
        f["GT"].create_dataset("GT_majority_vote", data=vote)
    samples = convert(raw, card)
    assert [s.official_split for s in samples] == layout.SPLITS
    assert samples[0].group_id == "patient_1"
    assert np.array_equal(samples[4].mask, layout.arrays()[1][4])


def test_bad_split_attribute(raw, card):
    """An unknown split value names the attribute."""
    with h5py.File(raw / layout.FILE_NAME, "r+") as f:
        f["HE"].attrs.create(
            "train_test_split", ["train", "valid"] * 2 + ["test"], dtype=h5py.string_dtype()
        )
    with pytest.raises(ConversionError, match="train_test_split"):
        convert(raw, card)
