"""Fixtures of the per-dataset converter tests: a module sets `DATASET`, gets its card and tree."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.data.raw_layouts import layout


@pytest.fixture
def card(request, registries) -> dict:
    """The registry card of the module's DATASET, without num_images (tiny trees are smaller)."""
    card = copy.deepcopy(registries.datasets[request.module.DATASET])
    card.pop("num_images", None)
    return card


@pytest.fixture
def raw(request, tmp_path, card) -> Path:
    """A fresh tiny raw tree of the module's DATASET (tests/data/raw_layouts/<DATASET>.py)."""
    layout(request.module.DATASET).make_raw(tmp_path / "raw", card)
    return tmp_path / "raw"
