"""PanNuke quirks (converter `pannuke`, three fold zips): running ids, argmax masks, fold splits."""

from __future__ import annotations

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import PanNuke as layout
from tests.data.raw_layouts import convert

DATASET = "PanNuke"
COUNT = 3 * layout.PER_FOLD


def test_samples(raw, card):
    """Running 5-digit ids across folds, argmax masks (5 = bg), fold splits, uint8 RGB."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == [f"{i:05d}" for i in range(COUNT)]
    assert [s.official_split for s in samples] == ["train"] * 2 + ["val"] * 2 + ["test"] * 2
    assert [s.group_id for s in samples] == [s.sample_id for s in samples]
    for n, s in enumerate(samples):
        fold, j = n // layout.PER_FOLD + 1, n % layout.PER_FOLD
        images, masks = layout.arrays(fold)
        assert s.source_file == f"Fold {fold}/images/fold{fold}/images.npy"
        assert s.image.dtype == np.uint8 and np.array_equal(s.image, images[j].astype(np.uint8))
        assert s.mask.dtype == np.uint8
        assert np.all(s.mask[layout.NUCLEUS_BOX] == layout.TYPE_OF[(fold, j)])
        assert np.all(s.mask[layout.OVERLAP_BOX] == 2)  # larger instance id wins
        assert np.all(s.mask[layout.VOID_BOX] == 0)  # no channel set -> 0, as the paper
        assert s.mask[40, 5] == 5 and s.mask[63, 63] == 5
        assert np.array_equal(s.mask, np.argmax(masks[j], axis=-1))
    assert set(np.unique(np.stack([s.mask for s in samples])).tolist()) == set(range(6))


def test_fold_folder_casing(raw, card):
    """Inner folders named 'Fold1' (as in the authors' script) work too."""
    for fold in (1, 2, 3):
        for kind in ("images", "masks"):
            inner = layout.fold_dir(raw, fold) / kind / f"fold{fold}"
            inner.rename(inner.with_name(f"Fold{fold}"))
    samples = convert(raw, card)
    assert [s.official_split for s in samples][-1] == "test"
    assert samples[2].source_file == "Fold 2/images/Fold2/images.npy"


def test_missing_masks(raw, card):
    """A fold without masks.npy names the fold and the file to restore."""
    (layout.fold_dir(raw, 3) / "masks" / "fold3" / "masks.npy").unlink()
    with pytest.raises(ConversionError, match=r"fold 3 has images but no masks\.npy"):
        convert(raw, card)
