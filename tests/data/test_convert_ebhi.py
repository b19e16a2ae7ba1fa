"""EBHI-Seg quirks (converter `ebhi`): category classes, a repeated name, an unlabeled image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import EBHI as layout
from tests.data.raw_layouts import convert

DATASET = "EBHI"
EXPECTED = {  # id -> (category folder kept, class id); natural order of the ids
    "GT2012149-2-400-005": ("Polyp", 5),
    "GT2016907-1-400-003": ("Adenocarcinoma", 1),
    "GT2016907-1-400-004": ("Adenocarcinoma", 1),
    "GTXC2014192-2-400-006": ("High-grade IN", 2),
    "GTXC2110135-2-400-007": ("Serrated adenoma", 6),
    "GTxc2014080-2-400-001": ("Normal", 4),
}


def test_ids_classes_groups(raw, card):
    """Original stems as ids; the later category wins a repeated name; unlabeled is skipped."""
    samples = convert(raw, card)
    assert [s.sample_id for s in samples] == list(EXPECTED)
    for s in samples:
        category, class_id = EXPECTED[s.sample_id]
        assert s.source_file == f"EBHI-SEG/{category}/image/{s.sample_id}.png"
        assert set(np.unique(s.mask).tolist()) == {0, class_id}
        assert s.official_split is None
    groups = {s.sample_id: s.group_id for s in samples}
    assert groups["GT2016907-1-400-003"] == groups["GT2016907-1-400-004"] == "GT2016907"
    assert groups["GTxc2014080-2-400-001"] == "GTXC2014080"


def test_known_pattern_of_the_repeated_name(raw, card):
    """The repeated name keeps the Polyp image and label, painted with class 5."""
    sample = next(s for s in convert(raw, card) if s.sample_id == layout.KNOWN["sample"])
    expected = np.zeros(sample.mask.shape, np.uint8)
    y0, y1, x0, x1 = layout.KNOWN["box"]
    expected[y0:y1, x0:x1] = layout.KNOWN["class"]
    assert np.array_equal(sample.mask, expected)
    earlier = raw / "EBHI-SEG" / "Low-grade IN" / "image" / f"{layout.KNOWN['sample']}.png"
    assert not np.array_equal(sample.image, np.asarray(Image.open(earlier)))


def test_label_styles_binarise(raw, card):
    """0/1, 0/255 and 3-channel labels all give the category id on the label's foreground."""
    for s in convert(raw, card):
        category, class_id = EXPECTED[s.sample_id]
        label = np.asarray(Image.open(raw / "EBHI-SEG" / category / "label" / f"{s.sample_id}.png"))
        flat = label if label.ndim == 2 else label[..., 0]
        assert np.array_equal(s.mask, np.where(flat > 0, class_id, 0))


def test_missing_categories_is_an_error(tmp_path, card):
    """A raw folder without any category folder is refused with the expected layout."""
    (tmp_path / "empty" / "EBHI-SEG").mkdir(parents=True)
    with pytest.raises(ConversionError, match="no category folder"):
        convert(tmp_path / "empty", card)
