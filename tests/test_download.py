"""Downloads: served from local file URLs, verified by sha256, atomic."""

from __future__ import annotations

import hashlib

import pytest

from densebench.download import ChecksumError, fetch, fetch_dataset


def make_source(tmp_path, name="archive.zip", payload=b"histology" * 1000):
    """A file to download and its card entry."""
    src = tmp_path / "server" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(payload)
    return {"url": src.as_uri(), "filename": name, "sha256": hashlib.sha256(payload).hexdigest()}


def test_fetch_verifies_and_renames(tmp_path):
    source = make_source(tmp_path)
    dest = fetch(source["url"], tmp_path / "out" / "a.zip", source["sha256"])
    assert dest.read_bytes() == b"histology" * 1000
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.zip"]


def test_wrong_checksum_leaves_nothing(tmp_path):
    source = make_source(tmp_path)
    with pytest.raises(ChecksumError, match=r"a\.zip.*expects 0{64}"):
        fetch(source["url"], tmp_path / "out" / "a.zip", "0" * 64)
    assert list((tmp_path / "out").iterdir()) == []


def test_dataset_sources_are_fetched_as_a_whole(tmp_path):
    good = make_source(tmp_path, "images.zip")
    bad = dict(make_source(tmp_path, "masks.zip"), sha256="f" * 64)
    fetch_dataset("TNBC", {"sources": [good]}, tmp_path / "raw" / "TNBC")
    assert (tmp_path / "raw" / "TNBC" / "images.zip").is_file()
    with pytest.raises(ChecksumError, match=r"masks\.zip"):
        fetch_dataset("GlaS", {"sources": [good, bad]}, tmp_path / "raw" / "GlaS")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["TNBC"]


def test_dataset_without_sources_names_the_drop_folder(tmp_path):
    with pytest.raises(ValueError, match=r"resources/raw/CoNSeP/"):
        fetch_dataset("CoNSeP", {"homepage": "https://x"}, tmp_path / "raw")
