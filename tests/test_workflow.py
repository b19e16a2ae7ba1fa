"""Workflow tests: the paper grid's dry-run, config errors, and the demo end to end (reduced).

Each test runs the real `snakemake` on the real Snakefile in a scratch working directory
(`--directory`), with the repository's config/ linked in.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.conftest import REPO

pytestmark = pytest.mark.workflow
BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in workdir."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    cmd = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run or dry-run."""
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory with the repository's config/ linked in."""
    (tmp_path / "config").symlink_to(REPO / "config")
    return tmp_path


def write_config(workdir: Path, **overrides) -> Path:
    """A config file: the demo config with top-level keys replaced."""
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config.update(overrides)
    path = workdir / "test_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_paper_grid_dry_run_lists_1530_training_jobs(workdir):
    result = snakemake(workdir, "-n", "--quiet", "rules", "reason")
    counts = job_counts(result.stdout + result.stderr)
    assert counts["train"] == 1530 and "predict" not in counts
    assert counts["convert"] == counts["unpack_raw"] == counts["download_split_list"] == 18
    assert counts["download_raw"] + counts["manual_raw"] == 18
    assert counts["download_weights"] == 17 and counts["score"] == 18
    assert counts["aggregate"] == counts["strategy_tables"] == counts["figure3"] == 1


def test_unknown_names_fail_before_any_job(workdir):
    config = write_config(workdir, models=["demo_vit_p8", "uni_v9"], strategies=["loraa"])
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "Unknown model 'uni_v9'" in message and "Valid models:" in message
    assert "Unknown strategy 'loraa'" in message and "Did you mean 'lora'" in message
    assert not (workdir / "resources").exists() and not (workdir / "results").exists()


def test_corrected_protocol_and_sliding_window_plan_the_same_grid(workdir):
    config = write_config(
        workdir, protocol="corrected", evaluate={"inference": "sliding_window", "overlap": 0.5}
    )
    dry = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", str(config))
    assert job_counts(dry.stdout + dry.stderr)["train"] == 45


def test_background_exclusion_needs_standard_metrics(workdir):
    config = write_config(workdir, evaluate={"exclude_background": True})
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert "needs the standard metric definitions" in result.stdout + result.stderr


def test_preflight_reports_every_model_offline_here(workdir):
    env_free = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env_free["PATH"] = f"{BIN}:{os.environ['PATH']}"
    cmd = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory"]
    cmd += [str(workdir), "--cores", "1", "results/weights/preflight.tsv"]
    subprocess.run(cmd, check=True, capture_output=True, env=env_free, timeout=120)
    table = pd.read_csv(workdir / "results/weights/preflight.tsv", sep="\t")
    assert len(table) == 17 and set(table["status"]) == {"offline"}
    assert table["detail"].str.contains("login node").all()


def test_missing_manual_drop_stops_before_any_job(workdir):
    config = write_config(
        workdir, datasets=["CoNSeP"], models=["demo_vit_p8"], strategies=["frozen"]
    )
    result = snakemake(workdir, "--configfile", str(config), "--cores", "1", check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "needs a manual download" in message
    assert "consep.zip" in message and "resources/raw/CoNSeP/" in message
    assert not (workdir / "resources").exists() and not (workdir / "results").exists()


def test_invalid_config_value_is_named(workdir):
    config = write_config(workdir, protocol="fancy")
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0 and "fancy" in result.stdout + result.stderr


def test_reduced_demo_end_to_end(workdir):
    config = write_config(
        workdir,
        datasets=["demo_glands"],
        models=["demo_vit_p8", "demo_vit_p14_reg4"],
        strategies=["frozen", "lora"],
        train=dict(yaml.safe_load((REPO / "config/demo.yaml").read_text())["train"], epochs=2),
    )
    run = ["--configfile", str(config), "--cores", "2"]
    snakemake(workdir, *run)

    table = pd.read_csv(workdir / "results/tables/results.csv")
    assert len(table) == 1 * 2 * 2 * 8
    assert set(table["model"]) == {"demo_vit_p8", "demo_vit_p14_reg4"}
    assert (table["ci_lower"] <= table["ci_upper"]).all()
    assert table["boot_mean"].between(0, 1).all()
    for strategy in ("frozen", "lora"):
        markdown = (workdir / f"results/tables/demo_glands/{strategy}.md").read_text()
        assert "Demo ViT/8" in markdown and "Demo ViT/14+reg4" in markdown
        wide = pd.read_csv(workdir / f"results/tables/demo_glands/{strategy}.csv")
        assert len(wide) == 2 and "Mean_Dice_ci_lower" in wide.columns
    from PIL import Image

    png = workdir / "results/figures/figure3.png"
    assert (
        Image.open(png).size[0] > 500 and (workdir / "results/figures/figure3.pdf").stat().st_size
    )

    # A second run has nothing to do.
    again = snakemake(workdir, *run, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr

    # Deleting one run's outputs reruns that run and only what depends on it.
    run_dir = workdir / "results/runs/demo_glands/demo_vit_p8/lora"
    before = np.load(run_dir / "confusion.npz")["matrices"]
    for name in ("best.pt", "last.pt", "confusion.npz"):
        (run_dir / name).unlink()
    dry = snakemake(workdir, *run, "-n", "--quiet", "rules", "reason")
    counts = job_counts(dry.stdout + dry.stderr)
    assert counts == {
        "train": 1, "score": 1, "aggregate": 1, "strategy_tables": 1, "figure3": 1, "all": 1,
        "total": 6,
    }  # fmt: skip
    snakemake(workdir, *run)
    after = np.load(run_dir / "confusion.npz")["matrices"]
    assert np.array_equal(before, after)  # same inputs, same numbers
