"""The instance store through the real `snakemake` on the demo config: built after the semantic
store, it rebuilds nothing upstream, and its own identity (the card's `instance_labels`) redoes
only itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.data.test_local_copies import snapshot
from tests.test_workflow import job_counts, snakemake

pytestmark = pytest.mark.workflow

STORE = "resources/datasets/demo_nuclei.zarr"
INSTANCES = "resources/datasets/demo_nuclei.instances.zarr"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory with the repository's config/ linked in."""
    (tmp_path / "config").symlink_to(REPO / "config")
    return tmp_path


def test_instance_store_after_the_semantic_store_rebuilds_no_store(workdir):
    from densebench.data.instances import InstanceStore
    from densebench.data.store import DatasetStore

    run = ["--configfile", str(workdir / "config/demo.yaml"), "--cores", "1"]
    snakemake(workdir, STORE, *run)
    before = snapshot(workdir / STORE)

    dry = snakemake(workdir, INSTANCES, "-n", *run)
    assert job_counts(dry.stdout) == {"convert_instances": 1, "total": 1}
    snakemake(workdir, INSTANCES, *run)
    truth, store = InstanceStore(workdir / INSTANCES), DatasetStore(workdir / STORE)
    assert truth.sample_ids == [s["id"] for s in store.samples] and truth.kind == "nucleus"
    assert all(truth.read(i).max() > 0 for i in range(len(truth)))
    assert snapshot(workdir / STORE) == before  # not rewritten, not even touched
    assert "Nothing to be done" in snakemake(workdir, STORE, INSTANCES, "-n", *run).stdout

    # Another kind of objects redoes the instance store only (the store's identity lacks it).
    cards = yaml.safe_load((REPO / "config/datasets.yaml").read_text())
    cards["demo_nuclei"]["instance_labels"] = "gland"
    registry = workdir / "datasets.yaml"
    registry.write_text(yaml.safe_dump(cards, sort_keys=False))
    overlay = workdir / "registry.yaml"
    overlay.write_text(yaml.safe_dump({"registries": {"datasets": str(registry)}}))
    edited = ["--configfile", str(workdir / "config/demo.yaml"), str(overlay), "--cores", "1"]
    dry = snakemake(workdir, STORE, INSTANCES, "-n", *edited)
    assert job_counts(dry.stdout) == {"convert_instances": 1, "total": 1}
