"""The workflow deployed as a Snakemake module (`module` + `use rule * from`, the way
snakedeploy deploys catalog workflows), with config/ copied beside the user's Snakefile
(README.md, "Using the workflow as a module")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_workflow import BIN, job_counts, snakemake

pytestmark = pytest.mark.workflow
TEST_CONFIG = REPO / ".test/config/config.yaml"


def deploy(folder: Path) -> Path:
    """A user's project folder: the README's Snakefile pointing at this checkout, config/
    copied beside it."""
    shutil.copytree(REPO / "config", folder / "config")
    readme = (REPO / "README.md").read_text()
    snippet = readme.split("```snakemake\n", 1)[1].split("```", 1)[0]
    snakefile = snippet.replace(
        'github("<owner>/<repo>", path="Snakefile", tag="<version>")', f'"{REPO / "Snakefile"}"'
    )
    (folder / "Snakefile").write_text(snakefile)
    return folder


def run_module(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """snakemake on the user's Snakefile in that folder."""
    cmd = [str(BIN / "snakemake"), "--directory", str(folder), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=folder, timeout=600)


def test_the_module_plans_the_same_jobs_and_runs_them(tmp_path):
    user = deploy(tmp_path / "user")
    planned = run_module(user, "-n", "--quiet", "rules", "--configfile", str(TEST_CONFIG))
    assert planned.returncode == 0, planned.stderr[-3000:]
    direct_dir = tmp_path / "direct"
    direct_dir.mkdir()
    (direct_dir / "config").symlink_to(REPO / "config")
    direct = snakemake(direct_dir, "-n", "--quiet", "rules", "--configfile", str(TEST_CONFIG))
    counts = job_counts(planned.stdout + planned.stderr)
    assert counts == job_counts(direct.stdout + direct.stderr)
    assert counts["train"] >= 2
    # The data stage of one dataset runs through the module (the package found beside it).
    store = "resources/datasets/demo_glands.zarr"
    done = run_module(user, store, "--cores", "2", "--configfile", str(TEST_CONFIG))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (user / store / "zarr.json").is_file()
