"""The job image: containers/Dockerfile built with podman from a locally made Debian base (no
registry here), and one demo training job of the workflow run inside it (ci/container_test.sh).

Needs root and podman, or Debian's apt-get to install it. Elsewhere it is skipped, unless
DENSEBENCH_REQUIRE_CONTAINER=1 (set by CI), where it fails instead. The first build takes
minutes (the CUDA torch layer, ~7 GB); reruns reuse the cached layers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

# A pytest-xdist group of its own (tests/conftest.py FIRST), started beside the cluster test: both
# may apt-get install on a fresh machine, one at a time (a flock in
# ci/container_test.sh and ci/local_slurm.sh).
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("container")]

JOB = "job/.test/results/runs/demo_glands/demo_vit_p8/frozen"


def _missing_requirement() -> str | None:
    """Why the container test cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "needs root (rootful podman; the base image is made with debootstrap)"
    if not shutil.which("podman") and not shutil.which("apt-get"):
        return "needs podman, or Debian's apt-get to install it"
    return None


def test_the_job_image_builds_and_runs_a_demo_training_job(tmp_path):
    reason = _missing_requirement()
    if reason:
        if os.environ.get("DENSEBENCH_REQUIRE_CONTAINER") == "1":
            pytest.fail(f"DENSEBENCH_REQUIRE_CONTAINER=1 but the container test {reason}")
        pytest.skip(reason)
    work = tmp_path / "work"
    env = dict(os.environ, CONTAINER_WORK=str(work))
    run = subprocess.run(
        ["bash", str(REPO / "ci/container_test.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=2400,
        check=False,
    )
    output = run.stdout + run.stderr
    print(output)
    assert run.returncode == 0, output[-4000:]
    assert re.search(r"^build: \d+ s; image size: \d+\.\d+ GB$", output, re.M), output
    image = re.search(r"^image: python 3\.11\.\d+, torch 2\.14\.1\S* \(CUDA \d+", output, re.M)
    assert image, output  # Debian's Python, and PyPI's CUDA build of the pinned torch
    assert "job ran in the image: /opt/venv/bin/densebench /opt/venv/bin/snakemake" in output
    assert re.search(r"^timings: .*total \d+ s$", output, re.M), output
    job = work / JOB
    assert (job / "best.pt").stat().st_size > 0
    log = (job / "train_log.csv").read_text().splitlines()
    assert len(log) >= 2, log  # a header and at least one epoch
