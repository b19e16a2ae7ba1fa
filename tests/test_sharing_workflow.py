"""Shared frozen-backbone training through Snakemake (train.share_frozen_backbone): one shared
job per (dataset, model) for the frozen-encoder runs that need training, the same bytes as
separate jobs, nothing retrained once done, only what a deletion needs, exact resume after a
kill; the setting is an execution setting (toggling it redoes nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO
from tests.test_workflow import kill_when_exists, planned, snakemake

pytestmark = pytest.mark.workflow
CELL = "results/runs/demo_tissue/demo_vit_p16"
SHARED = ("frozen", "cnn_adapter", "transformer_adapter")
STRATEGIES = [*SHARED, "lora"]


def config_file(workdir: Path, share: bool) -> list[str]:
    """The reduced demo (.test/config) on demo_tissue x demo_vit_p16 with the three
    frozen-encoder strategies and LoRA; snakemake's arguments."""
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config.update(datasets=["demo_tissue"], models=["demo_vit_p16"], strategies=STRATEGIES)
    config["train"] = dict(config["train"], share_frozen_backbone=share)
    path = workdir / f"share_{share}.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--configfile", str(path), "--cores", "2"]


def run_bytes(workdir: Path) -> dict[str, bytes]:
    """best.pt's bytes and the confusion matrices' of every run of the cell (an .npz's zip
    entries carry their writing time)."""
    out = {}
    for s in STRATEGIES:
        out[f"{s}/best.pt"] = (workdir / CELL / s / "best.pt").read_bytes()
        with np.load(workdir / CELL / s / "confusion.npz") as confusion:
            out[f"{s}/confusion"] = confusion["matrices"].tobytes()
    return out


def mtimes(workdir: Path, strategies) -> dict[str, int]:
    """Modification times of the runs' best.pt and confusion.npz."""
    return {
        f"{s}/{f}": (workdir / CELL / s / f).stat().st_mtime_ns
        for s in strategies
        for f in ("best.pt", "confusion.npz")
    }


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory) -> tuple[Path, list[str], dict[str, bytes]]:
    """The cell trained with sharing on, checked on the way: the dry run's jobs, then the
    results; (workdir, snakemake args, the runs' bytes)."""
    workdir = tmp_path_factory.mktemp("shared")
    (workdir / "config").symlink_to(REPO / "config")
    run = config_file(workdir, share=True)
    counts = planned(workdir, run)
    assert counts["train_shared"] == 1 and counts["train"] == 4
    snakemake(workdir, *run)
    return workdir, run, run_bytes(workdir)


def test_one_shared_job_equals_separate_jobs_and_stays_done(shared_runs, tmp_path):
    workdir, run, shared_bytes = shared_runs
    for strategy in SHARED:
        provenance = json.loads((workdir / CELL / strategy / "provenance.json").read_text())
        assert provenance["shared_job"] == "+".join(SHARED) and provenance["shared_runs"] == 3
        assert provenance["device"] == "cpu" and provenance["device_hours"] > 0
    lora = json.loads((workdir / CELL / "lora/provenance.json").read_text())
    assert lora["shared_job"] is None and lora["shared_runs"] == 1
    assert not (workdir / "results/shared/demo_tissue/demo_vit_p16").exists() or not any(
        (workdir / "results/shared/demo_tissue/demo_vit_p16").iterdir()
    )  # the staging folder is temporary
    log = (workdir / "logs/train_shared/demo_tissue/demo_vit_p16").glob("*.log")
    assert (
        "one encoder forward for frozen, cnn_adapter, transformer_adapter" in next(log).read_text()
    )
    assert planned(workdir, run) == {}
    # the same cell with the setting off: separate jobs, the very same bytes and results table
    (tmp_path / "config").symlink_to(REPO / "config")
    separate = config_file(tmp_path, share=False)
    counts = planned(tmp_path, separate)
    assert "train_shared" not in counts and counts["train"] == 4
    snakemake(tmp_path, *separate)
    assert run_bytes(tmp_path) == shared_bytes
    table = "results/tables/results.csv"
    assert (tmp_path / table).read_bytes() == (workdir / table).read_bytes()
    # an execution setting: toggling it redoes nothing, in either folder
    assert planned(workdir, config_file(workdir, share=False)) == {}
    assert planned(tmp_path, config_file(tmp_path, share=True)) == {}


def test_deleted_runs_retrain_alone_or_together_and_nothing_else(shared_runs):
    workdir, run, shared_bytes = shared_runs
    # one deleted run retrains alone; the others are untouched
    kept = mtimes(workdir, ["frozen", "transformer_adapter", "lora"])
    (workdir / CELL / "cnn_adapter/best.pt").unlink()
    counts = planned(workdir, run)
    assert counts["train"] == 1 and "train_shared" not in counts
    snakemake(workdir, *run)
    assert mtimes(workdir, ["frozen", "transformer_adapter", "lora"]) == kept
    assert run_bytes(workdir) == shared_bytes
    # a cell whose frozen run is done and whose adapter runs are not: those two, together
    for strategy in SHARED[1:]:
        (workdir / CELL / strategy / "best.pt").unlink()
    counts = planned(workdir, run)
    assert counts["train_shared"] == 1 and counts["train"] == 2
    dry = snakemake(workdir, *run, "-n").stdout
    assert "cnn_adapter+transformer_adapter" in dry and "frozen+" not in dry
    kept = mtimes(workdir, ["frozen", "lora"])
    snakemake(workdir, *run)
    assert mtimes(workdir, ["frozen", "lora"]) == kept
    assert run_bytes(workdir) == shared_bytes
    assert planned(workdir, run) == {}


def test_killed_shared_job_resumes_every_run_exactly(shared_runs):
    workdir, run, shared_bytes = shared_runs
    for strategy in SHARED:
        (workdir / CELL / strategy / "best.pt").unlink()
    kill_when_exists(workdir, run, workdir / CELL / "frozen/last.pt", delay=0.0)
    assert (workdir / CELL / "frozen/last.pt").exists()
    assert planned(workdir, run)["train_shared"] == 1
    snakemake(workdir, *run)
    logs = workdir / "logs/train_shared/demo_tissue/demo_vit_p16"
    log = (logs / "+".join(SHARED)).with_suffix(".log")
    assert "resuming from" in log.read_text()
    assert run_bytes(workdir) == shared_bytes
    assert not any((workdir / CELL / s / "last.pt").exists() for s in SHARED)


def test_a_strategy_record_edit_retrains_that_strategy_alone(shared_runs):
    workdir, run, _ = shared_runs
    kept = mtimes(workdir, ["frozen", "cnn_adapter", "lora"])
    edit = workdir / "strategies.yaml"
    registries = {"strategies": str(edit)}
    strategies = yaml.safe_load((REPO / "config/strategies.yaml").read_text())
    strategies["transformer_adapter"]["drop_path"] = 0.2
    edit.write_text(yaml.safe_dump(strategies, sort_keys=False))
    config = Path(run[1])
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump(dict(data, registries=registries)))
    counts = planned(workdir, run)
    assert counts["train"] == 1 and "train_shared" not in counts
    snakemake(workdir, *run)
    assert mtimes(workdir, ["frozen", "cnn_adapter", "lora"]) == kept
    assert planned(workdir, run) == {}
