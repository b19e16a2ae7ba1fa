"""COSAS24 quirks (converter `cosas24`, training-set layout): renamed ids, every mask style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from tests.data.raw_layouts import COSAS24 as layout
from tests.data.raw_layouts import convert

DATASET = "COSAS24"
DOMAINS = [  # natural order of task, then domain folder
    ("task1", "colorectum"),
    ("task1", "pancreas"),
    ("task1", "stomach"),
    ("task2", "3d-1000"),
    ("task2", "kfbio-400"),
    ("task2", "teksqray-600p"),
]


def test_ids_groups_no_official_split(raw, card):
    """Ids are <task>_<domain>_<stem> as the authors rename them; one group per image."""
    samples = convert(raw, card)
    stems = [layout.image_id(task, domain) for task, domain in DOMAINS]
    assert [s.sample_id for s in samples] == [
        f"{task}_{domain}_{stem}" for (task, domain), stem in zip(DOMAINS, stems, strict=True)
    ]
    assert [s.group_id for s in samples] == stems
    assert all(s.official_split is None for s in samples)


def test_every_mask_style_binarises(raw, card):
    """0/1, 0/255 and 3-channel 0/255 masks all give 0/1; the known box is exact."""
    samples = convert(raw, card)
    base = raw / "COSAS24-TrainingSet"
    for (task, domain), s in zip(DOMAINS, samples, strict=True):
        mask = np.asarray(Image.open(base / task / domain / "mask" / Path(s.source_file).name))
        flat = mask if mask.ndim == 2 else mask[..., 0]
        assert np.array_equal(s.mask, (flat > 0).astype(np.uint8))
        assert set(np.unique(s.mask).tolist()) == {0, 1}
    known = samples[DOMAINS.index(layout.KNOWN["domain"])]
    expected = np.zeros(known.mask.shape, np.uint8)
    y0, y1, x0, x1 = layout.KNOWN["box"]
    expected[y0:y1, x0:x1] = layout.KNOWN["class"]
    assert np.array_equal(known.mask, expected)


def test_missing_mask_is_an_error(raw, card):
    """An image without its mask is refused, naming the image."""
    stem = layout.image_id("task2", "kfbio-400")
    (raw / "COSAS24-TrainingSet/task2/kfbio-400/mask" / f"{stem}.png").unlink()
    with pytest.raises(ConversionError, match=rf"{stem}\.png.*no mask file"):
        convert(raw, card)
