"""Lizard quirks (converter `lizard`, Warwick zips): info.csv folds, classes via the id list."""

from __future__ import annotations

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import Lizard as layout
from tests.data.raw_layouts import convert

DATASET = "Lizard"
EXPECTED = ["consep_1", "consep_2", "crag_1", "dpath_1", "glas_2", "glas_10", "pannuke_1"]
SPLITS = {1: "train", 2: "val", 3: "test"}


def folder_of(stem: str) -> str:
    """The image folder of a stem in the tiny tree."""
    return next(f for f, stems in layout.IMAGES.items() if stem in stems)


def test_ids_splits_groups(raw, card):
    """Original stems as ids (natural order), info.csv folds as splits, stems as groups."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == EXPECTED
    assert [s.official_split for s in samples] == [SPLITS[layout.FOLDS[s]] for s in EXPECTED]
    assert [s.group_id for s in samples] == EXPECTED
    assert [s.source_file for s in samples] == [f"{folder_of(s)}/{s}.png" for s in EXPECTED]


def test_mask_paints_instance_classes(raw, card):
    """Instances get their class through the id list; an id missing from it stays 0."""
    for sample in convert(raw, card):
        stem = sample.sample_id
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == layout.shape_of(stem)
        assert np.all(sample.mask[layout.NUCLEUS] == layout.CLASSES[stem])
        assert np.all(sample.mask[layout.SECOND] == layout.SECOND_CLASS)
        assert np.all(sample.mask[layout.ORPHAN] == 0)
        assert int((sample.mask > 0).sum()) == 10 * 12 + 12 * 10


def test_kaggle_layout_is_accepted(raw, card, tmp_path):
    """The Kaggle mirror's nesting (lizard_images1/Lizard_Images1/...) converts identically."""
    kaggle = tmp_path / "kaggle"
    for name in (*layout.IMAGES, "Lizard_Labels"):
        (kaggle / name.lower()).mkdir(parents=True)
        (raw / name).rename(kaggle / name.lower() / name)
    samples = convert(kaggle, card)
    assert [s.sample_id for s in samples] == EXPECTED
    assert samples[0].source_file == "lizard_images1/Lizard_Images1/consep_1.png"


def test_image_missing_from_info_csv_is_named(raw, card):
    """An image without a fold row fails naming info.csv."""
    csv_path = raw / "Lizard_Labels" / "info.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(line for line in lines if not line.startswith("crag_1")) + "\n")
    with pytest.raises(ConversionError, match=r"info\.csv: no row for image 'crag_1'"):
        convert(raw, card)
