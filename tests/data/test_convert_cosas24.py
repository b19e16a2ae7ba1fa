"""The COSAS24 converter `cosas24` on a tiny tree in the training set's layout."""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import ConversionError, get_converter
from densebench.data.store import ValidationError, write_store
from densebench.registry import load_yaml, records

DATASET = "COSAS24"
layout = importlib.import_module(f"tests.data.raw_layouts.{DATASET}")
DOMAINS = [  # natural order of task, then domain folder
    ("task1", "colorectum"),
    ("task1", "pancreas"),
    ("task1", "stomach"),
    ("task2", "3d-1000"),
    ("task2", "kfbio-400"),
    ("task2", "teksqray-600p"),
]


@pytest.fixture
def card() -> dict:
    """The dataset's card from config/datasets.yaml, num_images set to the tiny tree's."""
    card = copy.deepcopy(records(load_yaml(ROOT / "config/datasets.yaml"))[DATASET])
    card["num_images"] = len(DOMAINS)
    return card


@pytest.fixture
def raw(tmp_path, card) -> Path:
    """A tiny raw tree in the COSAS24 layout."""
    layout.make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"


def convert(raw_dir: Path, card: dict) -> list:
    """Run the card's converter to completion."""
    return list(get_converter(card["converter"])(raw_dir, card))


def test_card_names_the_converter(card):
    """The card uses this converter, binary classes and the authors' split list."""
    assert card["converter"] == "cosas24"
    assert card["classes"] == ["background", "adenocarcinoma"]
    assert card["split_list"]["file"] == "COSAS24.json"


def test_ids_groups_no_official_split(raw, card):
    """Ids are <task>_<domain>_<stem> as the authors rename them; one group per image."""
    samples = convert(raw, card)
    stems = [layout.image_id(task, domain) for task, domain in DOMAINS]
    assert [s.sample_id for s in samples] == [
        f"{task}_{domain}_{stem}" for (task, domain), stem in zip(DOMAINS, stems, strict=True)
    ]
    assert samples[1].sample_id == f"task1_pancreas_{layout.image_id('task1', 'pancreas')}"
    assert [s.group_id for s in samples] == stems
    assert all(s.official_split is None for s in samples)
    for s in samples:
        assert np.array_equal(s.image, np.asarray(Image.open(raw / s.source_file)))


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


def test_store_seeded(raw, card, tmp_path):
    """The samples pass store validation under the seeded split."""
    write_store(
        convert(raw, card), card, DATASET, tmp_path / "cosas.zarr", split_policy="seeded",
        seed=0, fractions=(0.5, 0.25, 0.25),
    )  # fmt: skip
    assert (tmp_path / "cosas.zarr" / "zarr.json").is_file()


def test_corrupt_mask_fails_naming_the_file(raw, card, tmp_path):
    """A damaged mask stops conversion with its file name in the message."""
    path = layout.corrupt_mask(raw)
    with pytest.raises((ConversionError, ValidationError), match=re.escape(path.name)):
        write_store(
            convert(raw, card), card, DATASET, tmp_path / "x.zarr", split_policy="seeded",
            seed=0, fractions=(0.6, 0.2, 0.2),
        )  # fmt: skip


def test_missing_mask_is_an_error(raw, card):
    """An image without its mask is refused, naming the image."""
    stem = layout.image_id("task2", "kfbio-400")
    (raw / "COSAS24-TrainingSet/task2/kfbio-400/mask" / f"{stem}.png").unlink()
    with pytest.raises(ConversionError, match=rf"{stem}\.png.*no mask file"):
        convert(raw, card)
