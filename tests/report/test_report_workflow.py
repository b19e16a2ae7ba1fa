"""Workflow test of the `report` target on the published source (real snakemake, scratch dir).

The published files are dropped by hand into resources/published/ (offline), as a user without
internet on the login node would; the target must render both summary tables from them alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FIXTURES
from tests.report.conftest import REPORT, drop_published
from tests.test_workflow import job_counts, snakemake

pytestmark = pytest.mark.workflow
PUBLISHED = FIXTURES / "published"
TRAINING_RULES = {"train", "predict", "convert", "download_raw", "unpack_raw", "score"}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory with the published files dropped by hand."""
    return drop_published(tmp_path)


REPORT_RULES = {
    "source_table": 1,
    "export_published": 5,  # the five Data/<stem>.json, back in the published format
    "strategy_tables": 1,
    "summaries": 1,
    "strategy_comparison": 1,
    "friedman": 1,
    "rank_uncertainty": 1,
    "cards": 2,
    "figure": 6 + 5,  # six figures and a heat map per strategy
    "report": 1,
}
TABLES = ("dataset_sota", "average_rank", "strategy_comparison", "friedman", "rank_uncertainty")
FIGURES = (
    "figure3",
    "figure4",
    "dataset_sota",
    "average_rank",
    "critical_difference",
    "rank_uncertainty",
)
STRATEGIES = ("frozen", "lora", "dora", "cnn_adapter", "transformer_adapter")


def test_published_report_schedules_no_training(workdir):
    dry = snakemake(workdir, *REPORT, "-n", "--quiet", "rules")
    assert job_counts(dry.stdout) == {**REPORT_RULES, "total": sum(REPORT_RULES.values())}


def test_published_report_renders_every_product_from_hand_drops(published_report):
    workdir = published_report
    drops = {p.name: p.read_bytes() for p in (workdir / "resources/published").iterdir()}
    root = workdir / "results/report/published"
    tables, figures = root / "tables", root / "figures"
    expected = {
        f"{n}.{e}" for n in (*TABLES, "model_cards", "dataset_cards") for e in ("csv", "md", "tex")
    }
    assert {p.name for p in tables.iterdir() if p.is_file()} == expected
    names = [*FIGURES, *(f"heatmap_{s}" for s in STRATEGIES)]
    assert {p.name for p in figures.iterdir()} == {
        f"{n}.{e}" for n in names for e in ("png", "pdf")
    }
    assert all(p.read_bytes()[:4] in (b"\x89PNG", b"%PDF") for p in figures.iterdir())
    per_strategy = sorted(p.relative_to(tables) for p in tables.glob("per_strategy/*/*.csv"))
    assert len(per_strategy) == 18 * 5  # the 90 per-(dataset, strategy) tables
    # values against the committed files: GlaS x DoRA, best model first
    data = json.loads((PUBLISHED / "dora.json").read_text())["GlaS"]
    wide = pd.read_csv(tables / "per_strategy/GlaS/dora.csv")
    best = max(data, key=lambda m: data[m]["Mean_Dice"]["mean"])
    assert wide.loc[0, "model"] == best
    assert wide.loc[0, "Mean_Dice"] == data[best]["Mean_Dice"]["mean"]
    assert wide.loc[0, "mIoU_ci_upper"] == data[best]["mIoU"]["ci_upper"]
    assert len(wide) == 17
    sota = pd.read_csv(tables / "dataset_sota.csv").set_index("dataset")
    assert sota.loc["GlaS", ["model_name", "strategy_name"]].tolist() == ["H-Optimus-1", "DoRA"]
    assert round(sota.loc["GlaS", "mean"], 4) == 0.9496
    ranks = pd.read_csv(tables / "average_rank.csv")
    assert ranks.loc[0, "model_name"] == "H-Optimus-0" and round(ranks.loc[0, "overall"], 2) == 4.08
    friedman = pd.read_csv(tables / "friedman.csv")
    assert (friedman["k"] == 17).all() and (friedman["n_blocks"] == 90).all()
    # the source exported in the published format: the dropped files back, byte for byte
    assert {p.name: p.read_bytes() for p in (root / "Data").iterdir()} == drops
    uncertainty = pd.read_csv(tables / "rank_uncertainty.csv")
    assert set(uncertainty["scheme"]) == {"dataset"} and set(uncertainty["replicates"]) == {1000}
    assert uncertainty.loc[0, "model_name"] == "H-Optimus-0"
    # the hand drops are inputs: still there, untouched, even after forcing the job reading them
    table = "results/report/published/results.csv"
    snakemake(workdir, "--cores", "2", table, "--forcerun", "source_table", *REPORT[1:])
    assert {p.name: p.read_bytes() for p in (workdir / "resources/published").iterdir()} == drops


def test_wrong_hand_drop_is_named_and_kept(workdir):
    drop = workdir / "resources/published/cnn.json"
    drop.write_bytes(drop.read_bytes().replace(b"0.", b"1.", 1))
    result = snakemake(workdir, "--cores", "2", *REPORT, check=False)
    assert result.returncode != 0
    log = (workdir / "logs/source_table/published.log").read_text()
    assert "resources/published/cnn.json" in log and "expected" in log
    assert drop.exists()


def test_missing_published_files_are_fetched_by_a_local_rule(workdir):
    for path in (workdir / "resources/published").glob("*.json"):
        path.unlink()
    dry = snakemake(workdir, *REPORT, "-n", "--quiet", "rules")
    counts = job_counts(dry.stdout)
    assert counts["fetch_published"] == 5
    assert not TRAINING_RULES & set(counts)
