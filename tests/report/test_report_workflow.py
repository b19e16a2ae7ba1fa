"""Workflow test of the `report` target on the published source (real snakemake, scratch dir).

The published files are dropped by hand into resources/published/ (offline), as a user without
internet on the login node would; the target must render both summary tables from them alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FIXTURES, REPO
from tests.test_workflow import job_counts, snakemake

pytestmark = pytest.mark.workflow
PUBLISHED = FIXTURES / "published"
TRAINING_RULES = {"train", "predict", "convert", "download_raw", "unpack_raw", "score"}
REPORT = ("report", "--config", "results_source=published")
"""The target before `--config`, which takes every word up to the next option."""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory: config/ linked in, the published files dropped by hand."""
    (tmp_path / "config").symlink_to(REPO / "config")
    drop = tmp_path / "resources/published"
    drop.mkdir(parents=True)
    for path in PUBLISHED.glob("*.json"):
        shutil.copy(path, drop / path.name)
    return tmp_path


def test_published_report_schedules_no_training(workdir):
    dry = snakemake(workdir, *REPORT, "-n", "--quiet", "rules")
    assert job_counts(dry.stdout) == {"summaries": 1, "report": 1, "total": 2}


def test_published_report_renders_both_tables_from_hand_drops(workdir):
    drops = {p.name: p.read_bytes() for p in (workdir / "resources/published").iterdir()}
    snakemake(workdir, "--cores", "2", *REPORT)
    tables = workdir / "results/report/published/tables"
    assert sorted(p.name for p in tables.iterdir()) == [
        "average_rank.csv",
        "average_rank.md",
        "dataset_sota.csv",
        "dataset_sota.md",
    ]
    sota = pd.read_csv(tables / "dataset_sota.csv").set_index("dataset")
    assert sota.loc["GlaS", ["model_name", "strategy_name"]].tolist() == ["H-Optimus-1", "DoRA"]
    assert round(sota.loc["GlaS", "mean"], 4) == 0.9496
    ranks = pd.read_csv(tables / "average_rank.csv")
    assert ranks.loc[0, "model_name"] == "H-Optimus-0" and round(ranks.loc[0, "overall"], 2) == 4.08
    # the hand drops are inputs: still there, untouched, even after forcing every job
    snakemake(workdir, "--cores", "2", "--forceall", *REPORT)
    assert {p.name: p.read_bytes() for p in (workdir / "resources/published").iterdir()} == drops


def test_wrong_hand_drop_is_named_and_kept(workdir):
    drop = workdir / "resources/published/cnn.json"
    drop.write_bytes(drop.read_bytes().replace(b"0.", b"1.", 1))
    result = snakemake(workdir, "--cores", "2", *REPORT, check=False)
    assert result.returncode != 0
    log = (workdir / "logs/summaries/published.log").read_text()
    assert "resources/published/cnn.json" in log and "expected" in log
    assert drop.exists()


def test_missing_published_files_are_fetched_by_a_local_rule(workdir):
    for path in (workdir / "resources/published").glob("*.json"):
        path.unlink()
    dry = snakemake(workdir, *REPORT, "-n", "--quiet", "rules")
    counts = job_counts(dry.stdout)
    assert counts["fetch_published"] == 5
    assert not TRAINING_RULES & set(counts)
