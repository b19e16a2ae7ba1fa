"""Shared fixtures: the repository root, the registries, a small converted demo store."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from densebench.config import ROOT, load_config
from densebench.registry import Registries

REPO = ROOT
FIXTURES = Path(__file__).parent / "fixtures"
"""Test data files (published excerpts, split-list excerpts, checkpoint key lists)."""


@pytest.fixture(scope="session")
def registries() -> Registries:
    """The shipped registries, the demo models that the workflow pretrains (`weights:
    pretrain`) made random-init: unit tests build them without a snapshot (the shipped records
    are tested in tests/models/test_pretrain.py)."""
    shipped = Registries.load(
        REPO / "config/models.yaml", REPO / "config/datasets.yaml", REPO / "config/strategies.yaml"
    )
    models = {
        name: dict(record, weights="random") if record.get("weights") == "pretrain" else record
        for name, record in shipped.models.items()
    }
    return dataclasses.replace(shipped, models=models)


@pytest.fixture(scope="session")
def demo_config() -> dict:
    """The validated demo config."""
    return load_config(REPO / "config/demo.yaml")


@pytest.fixture(scope="session")
def small_store(tmp_path_factory, registries) -> Path:
    """A converted demo_nuclei store with 12 images (seeded split)."""
    from densebench.data.converters import get_converter
    from densebench.data.store import write_store
    from densebench.data.synthetic import write_synthetic_raw

    card = copy.deepcopy(registries.datasets["demo_nuclei"])
    card["synthetic"]["num_images"] = card["num_images"] = 12
    root = tmp_path_factory.mktemp("store")
    write_synthetic_raw(card, root / "raw")
    store = root / "demo_nuclei.zarr"
    samples = get_converter(card["converter"])(root / "raw", card)
    write_store(
        samples,
        card,
        "demo_nuclei",
        store,
        split_policy="seeded",
        seed=0,
        fractions=(0.5, 0.25, 0.25),
    )
    return store
