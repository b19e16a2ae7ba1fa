"""Local copies (config `local_copies`) through the real `snakemake`: read in place of a download
or a hand drop, checked at start-up, never deleted or changed.

The open dataset is CPM-15 (a Google Drive folder): its local copy is the tiny tree of
tests/data/raw_layouts/cpm15.py, somewhere outside the working directory, and its store builds
from it without the internet. The manual one is CoNSeP, as an archive under a name of its own.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from densebench.config import validate_config
from densebench.plan import LocalCopyError, Plan
from densebench.registry import UnknownNameError
from tests.conftest import REPO
from tests.data.raw_layouts import cpm15
from tests.test_workflow import job_counts, planned, snakemake, write_config

pytestmark = pytest.mark.workflow


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory with the repository's config/ linked in."""
    (tmp_path / "work" / "config").parent.mkdir()
    (tmp_path / "work" / "config").symlink_to(REPO / "config")
    return tmp_path / "work"


def one_dataset(workdir: Path, dataset: str, local: Path, **overrides) -> list[str]:
    """Snakemake arguments scheduling one dataset, read from a local copy."""
    config = write_config(
        workdir,
        datasets=[dataset],
        models=["demo_vit_p8"],
        strategies=["frozen"],
        local_copies={dataset: str(local)},
        **overrides,
    )
    return ["--configfile", str(config), "--cores", "1"]


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file's bytes and every entry's mtime under root (root included)."""
    entries = [root, *sorted(root.rglob("*"))]
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in entries
    }


def test_open_dataset_converts_from_a_local_copy_that_no_flag_touches(workdir):
    # the Drive folder `cpm15` as a browser or rclone copies it, far from resources/raw/
    copy = workdir.parent / "elsewhere" / "CPM-15 copy"
    cpm15.make_raw(copy.parent, {})
    (copy.parent / "cpm15").rename(copy)
    registry = workdir / "datasets.yaml"
    cards = yaml.safe_load((REPO / "config/datasets.yaml").read_text())
    cards["cpm15"]["num_images"] = len(cpm15.STEMS)  # the tiny tree
    registry.write_text(yaml.safe_dump(cards, sort_keys=False))
    run = one_dataset(workdir, "cpm15", copy, registries={"datasets": str(registry)})
    store = "resources/datasets/cpm15.zarr"
    before = snapshot(copy)

    dry = snakemake(workdir, *run, store, "-n", "-p")
    output = dry.stdout + dry.stderr
    assert job_counts(output) == {"unpack_raw": 1, "convert": 1, "total": 2}  # no download
    assert f"--local '{copy}'" in output and "resources/raw/cpm15" not in output
    snakemake(workdir, *run, store)
    assert (workdir / store / "zarr.json").is_file()
    assert (workdir / "resources/unpacked/cpm15/cpm15/Labels/image_00.mat").is_file()
    assert not (workdir / "resources/raw").exists()  # nothing downloaded, nothing placed

    # Moved (the config follows): no identity holds the path, but Snakemake redoes a job whose
    # input paths change; `--touch` once keeps what was built from the same content.
    copy = copy.rename(copy.parent / "CPM-15 moved")
    run = one_dataset(workdir, "cpm15", copy, registries={"datasets": str(registry)})
    why = snakemake(workdir, *run, store, "-n")
    assert "Set of input files has changed" in why.stdout + why.stderr
    assert "Params have changed" not in why.stdout + why.stderr
    snakemake(workdir, *run, store, "--touch")
    assert planned(workdir, [*run, store]) == {}

    forced = ["--forcerun", "unpack_raw", "convert", "download_raw"]
    result = snakemake(workdir, *run, store, *forced)
    counts = job_counts(result.stdout + result.stderr)
    assert counts == {"unpack_raw": 1, "convert": 1, "total": 2}
    snakemake(workdir, *run, "-F", store)
    snakemake(workdir, *run, store, "--delete-all-output")
    assert not (workdir / store).exists() and not (workdir / "resources/unpacked/cpm15").exists()
    assert snapshot(copy) == before  # same files, same bytes, same times: never touched


def test_manual_dataset_takes_a_local_archive_instead_of_a_hand_drop(workdir):
    archive = workdir.parent / "downloads" / "CoNSeP (registered copy).zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("CoNSeP/Train/Images/train_1.png", b"dummy")
    run = one_dataset(workdir, "CoNSeP", archive)
    unpacked = "resources/unpacked/CoNSeP"
    counts = planned(workdir, [*run, "resources/datasets/CoNSeP.zarr"])
    assert counts == {"unpack_raw": 1, "convert": 1, "total": 2}  # no manual_raw
    snakemake(workdir, *run, unpacked)
    assert (workdir / unpacked / "CoNSeP/Train/Images/train_1.png").read_bytes() == b"dummy"
    assert (workdir / unpacked / "SOURCES.sha256").read_text().endswith("  consep.zip\n")
    snakemake(workdir, *run, unpacked, "--delete-all-output")
    assert archive.is_file() and not (workdir / unpacked).exists()


@pytest.mark.parametrize(
    ("dataset", "remedy"),
    [
        ("cpm15", "download it into resources/raw/cpm15/"),
        ("CoNSeP", "drop its files by hand into resources/raw/CoNSeP/"),
    ],
)
def test_a_missing_local_copy_stops_the_run_before_any_job(workdir, dataset, remedy):
    missing = workdir.parent / "unmounted" / dataset
    result = snakemake(workdir, *one_dataset(workdir, dataset, missing), check=False)
    message = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert f"dataset {dataset}: its local copy {missing} (config `local_copies`)" in message
    assert "does not exist. Remedy: correct its path under `local_copies`" in message
    assert remedy in message
    assert not (workdir / "logs").exists(), "a job ran before the check"
    assert not (workdir / "resources").exists() and not missing.parent.exists()


def test_a_local_copy_of_another_shape_is_explained(workdir):
    wrong = workdir.parent / "cpm15.zip"  # a file, where the card's source is a Drive folder
    wrong.write_bytes(b"not the folder")
    result = snakemake(workdir, *one_dataset(workdir, "cpm15", wrong), check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "is not what its card describes" in message
    assert "a folder holding cpm15/, or that folder itself" in message
    assert not (workdir / "logs").exists() and wrong.read_bytes() == b"not the folder"


def test_local_copies_name_datasets_with_raw_files(demo_config, registries):
    def plan(copies):
        config = dict(demo_config, local_copies=copies)
        return Plan(validate_config(config), registries)

    with pytest.raises(UnknownNameError, match="Unknown dataset 'cpm16'"):
        plan({"cpm16": "/data/cpm16"})
    with pytest.raises(LocalCopyError, match="demo_glands is generated by the workflow"):
        plan({"demo_glands": "/data/glands"})
    taken = plan({"cpm15": "~/cpm15", "CoNSeP": "consep.zip"})
    for kind in ("sources", "store"):  # a local copy is no part of an identity
        assert taken.identity(kind, {"dataset": "cpm15"}) == plan({}).identity(
            kind, {"dataset": "cpm15"}
        )
    assert taken.local_copies == {"cpm15": str(Path.home() / "cpm15"), "CoNSeP": "consep.zip"}
    assert "cpm15" not in taken.downloaded() and "CoNSeP" not in taken.hand_dropped()
    assert "cpm17" in taken.downloaded() and "CRAG" in taken.hand_dropped()


def test_a_folder_of_the_cards_sources_is_read_in_place_and_never_changed(tmp_path):
    from densebench.data.download import RawDataError, local_sources, unpack_sources

    names = ("a.zip", "b.zip")
    card = {"access": "open", "sources": [{"filename": n, "kind": "http"} for n in names]}
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in names:
        with zipfile.ZipFile(copy / name, "w") as handle:
            handle.writestr(f"{name}.txt", name)
    assert local_sources(card, copy) == {n: copy / n for n in names}
    assert local_sources(card, copy / "a.zip") == {}  # one file of two sources: not the copy
    unpack_sources("X", card, None, tmp_path / "unpacked", local=copy)
    assert (tmp_path / "unpacked/b.zip.txt").read_text() == "b.zip"
    card["sources"][0]["sha256"] = "0" * 64
    before = snapshot(copy)
    with pytest.raises(RawDataError, match=r"a\.zip has sha256 .* the workflow never changes it"):
        unpack_sources("X", card, None, tmp_path / "again", local=copy)
    assert snapshot(copy) == before and not (tmp_path / "again").exists()
