"""The published source's report, rendered once per test session from hand-dropped files (the
workflow tests of tests/report/ read it; rendering takes about 40 s here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO

REPORT = ("report", "--config", "results_source=published")
"""The target before `--config`, which takes every word up to the next option."""


def drop_published(workdir: Path) -> Path:
    """A scratch working directory: config/ linked in, the published files dropped by hand."""
    (workdir / "config").symlink_to(REPO / "config")
    drop = workdir / "resources/published"
    drop.mkdir(parents=True)
    for path in (FIXTURES / "published").glob("*.json"):
        shutil.copy(path, drop / path.name)
    return workdir


@pytest.fixture(scope="session")
def published_report(tmp_path_factory) -> Path:
    """A working directory where `snakemake --cores 2 report` rendered the published source."""
    from tests.test_workflow import snakemake

    workdir = drop_published(tmp_path_factory.mktemp("published"))
    snakemake(workdir, "--cores", "2", *REPORT)
    return workdir
