"""Atomic outputs: nothing half-written takes the final name."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from densebench.atomic import atomic_output, replace_path, write_table, write_text


def test_file_appears_only_on_success(tmp_path):
    target = tmp_path / "a" / "table.csv"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and list(target.parent.iterdir()) == []
    write_text("whole", target)
    assert target.read_text() == "whole"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_temporary_keeps_the_suffix(tmp_path):
    with atomic_output(tmp_path / "fig.png") as tmp:
        assert tmp.suffix == ".png" and tmp.name.startswith(".fig.png.tmp-")
        tmp.write_bytes(b"x")


def test_folders_are_replaced_whole(tmp_path):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("1")
    with atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_replace_path_onto_missing_target(tmp_path):
    src = tmp_path / "src"
    src.write_text("x")
    replace_path(src, tmp_path / "dst")
    assert (tmp_path / "dst").read_text() == "x" and not src.exists()


def test_temporaries_of_dead_processes_are_removed(tmp_path):
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    stale = tmp_path / f".log.csv.tmp-{child.pid}.csv"
    stale.write_text("half")
    live = tmp_path / f".log.csv.tmp-{1}.csv"  # pid 1 is always alive
    live.write_text("other writer")
    write_text("whole", tmp_path / "log.csv")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "log.csv").read_text() == "whole"


def test_folder_cleanup_keeps_live_and_final_files(tmp_path):
    import subprocess

    from densebench.atomic import remove_stale_in

    child = subprocess.Popen(["true"])
    child.wait()
    (tmp_path / f".best.pt.tmp-{child.pid}.pt").write_text("x")
    (tmp_path / f".train_log.csv.tmp-{child.pid}.csv").write_text("x")
    (tmp_path / ".last.pt.tmp-1.pt").write_text("x")
    (tmp_path / "best.pt").write_text("x")
    remove_stale_in(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".last.pt.tmp-1.pt", "best.pt"]


def test_write_table_atomic_roundtrip(tmp_path) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [0.1 + 0.2, math.pi]})
    target = tmp_path / "deep" / "dir" / "t.csv"
    write_table(df, target)
    back = pd.read_csv(target)
    assert back["b"].tolist() == df["b"].tolist()  # full float precision
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.csv"]  # no temp left over
    write_table(df.iloc[:1], target)  # overwrite
    assert len(pd.read_csv(target)) == 1
