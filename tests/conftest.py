"""Shared fixtures: the repository root, the registries, a small converted demo store."""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
from pathlib import Path

import pytest

from densebench.config import ROOT, load_config
from densebench.registry import Registries

REPO = ROOT
FIXTURES = Path(__file__).parent / "fixtures"
"""Test data files (published excerpts, split-list excerpts, checkpoint key lists)."""

# Every `snakemake` loads the slurm executor plugin, which asks `scontrol show config` for a
# default (timeout 10 s): once tests/test_cluster.py has installed SLURM and stopped its
# cluster again, each call would wait those 10 s for a controller that is gone. An empty
# configuration makes scontrol fail at once; the cluster module points at the real one.
_NO_SLURM = Path(tempfile.gettempdir()) / "densebench-tests-no-slurm.conf"
_NO_SLURM.touch()
os.environ["SLURM_CONF"] = str(_NO_SLURM)

SHARED = {
    "cluster_run": "slurm_cluster",
    "demo_run": "reduced_demo",
    "shared_runs": "sharing_demo",
    "published_report": "published_report",
    "fetched": "local_hub",
    "clone": "readme_clone",
}
"""Module or session fixtures that take long to make -> the xdist group of the tests using them
(pytest-xdist makes them once per worker: `--dist loadgroup` keeps their tests on one worker),
longest first: they start first, the single tests fill the other worker meanwhile."""


def pytest_itemcollected(item):
    """Mark the tests of each shared fixture as one xdist group (before any
    pytest_collection_modifyitems: xdist's reads the marks there)."""
    for fixture, group in SHARED.items():
        if fixture in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(group))


FIRST = ("slurm_cluster", "container", *list(SHARED.values())[1:])
"""The xdist groups, longest first (the container test is a group of its own)."""


def pytest_collection_modifyitems(config, items):
    """Run the groups first, longest first."""
    rank = {group: i for i, group in enumerate(FIRST)}

    def first(item) -> int:
        groups = {mark.args[0] for mark in item.iter_markers("xdist_group")}
        return min((rank[g] for g in groups), default=len(rank))

    items.sort(key=first)
    if getattr(config.option, "loadgroup", False):  # a pytest-xdist worker under loadgroup
        for item in items:
            group_by_nodeid(item)


def group_by_nodeid(item) -> None:
    """Append the item's xdist group to its node id ("<id>@<group>"), which the loadgroup
    scheduler reads: pytest-xdist 3.8.0 sets `item._nodeid`, which pytest 9 no longer reads
    (its node id is `str(item._id)`), so without this every test would be a group of its own."""
    groups = sorted({mark.args[0] for mark in item.iter_markers("xdist_group")})
    if groups and "@" not in item.nodeid:
        grouped = dataclasses.replace(item._id)
        object.__setattr__(grouped, "_str_cache", f"{item.nodeid}@{'_'.join(groups)}")
        item._id = grouped


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
