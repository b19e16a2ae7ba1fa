"""Hand drops through the real `snakemake`: never deleted, used as they are, checked at start-up.

A hand drop (a registration-only dataset, or a Drive folder too large for gdown) lives in
resources/raw/<dataset>/ and is an input of unpack_raw only, so neither forcing (-F, --forcerun)
nor deleting outputs (--delete-all-output, --delete-temp-output) may touch it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_workflow import job_counts, snakemake, write_config

pytestmark = pytest.mark.workflow

BCSS_FOLDER = "0_Public-data-Amgad2019_0.25MPP"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory with the repository's config/ linked in."""
    (tmp_path / "config").symlink_to(REPO / "config")
    return tmp_path


def drop_consep(raw: Path) -> Path:
    """A dummy consep.zip, as a person would drop it."""
    raw.mkdir(parents=True)
    with zipfile.ZipFile(raw / "consep.zip", "w") as handle:
        handle.writestr("CoNSeP/Train/Images/train_1.png", b"dummy")
    return raw / "consep.zip"


def drop_bcss(raw: Path) -> Path:
    """A dummy BCSS Drive folder, as downloaded in a browser."""
    mask = raw / BCSS_FOLDER / "masks" / "TCGA-A1.png"
    mask.parent.mkdir(parents=True)
    mask.write_bytes(b"dummy")
    return mask


def one_dataset(workdir: Path, dataset: str) -> list[str]:
    """Snakemake arguments scheduling one dataset with the smallest demo model and strategy."""
    config = write_config(
        workdir, datasets=[dataset], models=["demo_vit_p8"], strategies=["frozen"]
    )
    return ["--configfile", str(config), "--cores", "1"]


@pytest.mark.parametrize(("dataset", "drop"), [("CoNSeP", drop_consep), ("BCSS", drop_bcss)])
def test_hand_drops_survive_forced_runs_and_output_deletion(workdir, dataset, drop):
    run = one_dataset(workdir, dataset)
    dropped = drop(workdir / "resources/raw" / dataset)
    content = dropped.read_bytes()
    snakemake(workdir, *run, "--delete-all-output")
    assert dropped.is_file(), "--delete-all-output deleted a hand drop"
    unpacked = f"resources/unpacked/{dataset}"
    forced = snakemake(workdir, *run, "-F", unpacked, "--forcerun", "manual_raw", "download_raw")
    assert job_counts(forced.stdout + forced.stderr) == {"unpack_raw": 1, "total": 1}
    assert dropped.read_bytes() == content and (workdir / unpacked).is_dir()
    snakemake(workdir, *run, "--delete-temp-output")
    snakemake(workdir, *run, "--delete-all-output")
    assert dropped.read_bytes() == content and not (workdir / unpacked).exists()


@pytest.mark.parametrize(
    ("dataset", "present", "wanted"),
    [
        ("BCSS", [], [f"{BCSS_FOLDER}/ (the whole folder)", "drive.google.com/drive/folders/"]),
        ("WSSS4LUAD", ["2.validation.zip"], ["3.testing.zip", "2.validation.zip", "already there"]),
    ],
)
def test_incomplete_drops_stop_the_run_at_start_up(workdir, dataset, present, wanted):
    raw = workdir / "resources/raw" / dataset
    for name in present:
        raw.mkdir(parents=True, exist_ok=True)
        (raw / name).write_bytes(b"dummy")
    result = snakemake(workdir, *one_dataset(workdir, dataset), check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and f"dataset {dataset} needs a manual download" in message
    assert f"resources/raw/{dataset}/ and run again" in message
    assert all(text in message for text in wanted), message[-2000:]
    assert not (workdir / "logs").exists(), "a job ran before the drop check"
    assert sorted(p.name for p in raw.glob("*")) == sorted(present)  # the drop is untouched
