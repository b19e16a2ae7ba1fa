"""Atomic outputs: nothing half-written takes the final name."""

from __future__ import annotations

import pytest

from densebench.atomic import atomic_output, replace_path, write_text


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
