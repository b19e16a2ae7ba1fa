"""Raw files: downloads from local file URLs, resume, sha256, manual drops, safe unpacking."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

import densebench.data.download
from densebench.data.download import (
    ChecksumError,
    DownloadError,
    RawDataError,
    check_manual_drop,
    fetch,
    fetch_sources,
    fetch_split_list,
    needs_hand_drop,
    unpack_sources,
)


def make_source(tmp_path, name="archive.zip", payload=b"histology" * 1000):
    """A file to download and its card entry."""
    src = tmp_path / "server" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    return {"url": src.as_uri(), "filename": name, "sha256": sha, "kind": "http"}


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


def test_stale_partial_download_is_replaced_when_the_server_cannot_resume(tmp_path):
    source = make_source(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".a.zip.part").write_bytes(b"garbage")  # file:// has no Range support
    fetch(source["url"], tmp_path / "out" / "a.zip", source["sha256"])
    assert (tmp_path / "out" / "a.zip").read_bytes() == b"histology" * 1000


def test_dataset_sources_are_fetched_as_a_whole(tmp_path):
    good = make_source(tmp_path, "images.zip")
    bad = dict(make_source(tmp_path, "masks.zip"), sha256="f" * 64)
    fetch_sources("TNBC", {"sources": [good]}, tmp_path / "raw" / "TNBC")
    assert (tmp_path / "raw" / "TNBC" / "images.zip").is_file()
    with pytest.raises(ChecksumError, match=r"masks\.zip"):
        fetch_sources("GlaS", {"sources": [good, bad]}, tmp_path / "raw" / "GlaS")
    assert not (tmp_path / "raw" / "GlaS").exists()


def test_split_list_is_fetched_at_the_pinned_commit(tmp_path, monkeypatch):
    server = tmp_path / "server" / "abc123"
    server.mkdir(parents=True)
    (server / "TNBC.json").write_text('{"train": [], "test": []}')
    monkeypatch.setattr(
        densebench.data.download, "SPLIT_LIST_URL", f"{server.parent.as_uri()}/{{commit}}/{{file}}"
    )
    sha = hashlib.sha256((server / "TNBC.json").read_bytes()).hexdigest()
    card = {"split_list": {"commit": "abc123", "file": "TNBC.json", "sha256": sha}}
    line = fetch_split_list("TNBC", card, tmp_path / "out" / "TNBC.json")
    assert line == f"TNBC: {(server / 'TNBC.json').as_uri()} sha256 {sha}"
    assert (tmp_path / "out" / "TNBC.json").read_text() == '{"train": [], "test": []}'
    with pytest.raises(ValueError, match="dataset X: its card has no split_list"):
        fetch_split_list("X", {}, tmp_path / "x.json")


def test_an_unreachable_split_list_names_the_dataset_the_file_and_the_remedies(
    tmp_path, monkeypatch
):
    gone = (tmp_path / "offline").as_uri()
    monkeypatch.setattr(densebench.data.download, "SPLIT_LIST_URL", f"{gone}/{{commit}}/{{file}}")
    card = {"split_list": {"commit": "abc123", "file": "TNBC.json"}}
    out = tmp_path / "splits" / "TNBC.json"
    with pytest.raises(DownloadError) as info:
        fetch_split_list("TNBC", card, out)
    message = str(info.value)
    assert message.startswith("dataset TNBC: the authors' split list: could not download")
    assert f"{gone}/abc123/TNBC.json" in message and f"place it at {out}" in message
    assert "data.split_policy seeded" in message
    assert not out.exists() and not list(out.parent.iterdir())


def test_an_unreachable_source_names_the_dataset_and_local_copies(tmp_path):
    source = make_source(tmp_path)
    (tmp_path / "server" / source["filename"]).unlink()
    card = {"access": "open", "sources": [source]}
    with pytest.raises(DownloadError) as info:
        fetch_sources("GlaS", card, tmp_path / "raw" / "GlaS")
    message = str(info.value)
    assert message.startswith(f"dataset GlaS: could not download {source['url']}")
    assert "`local_copies: {GlaS: PATH}`" in message
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_manual_sources_explain_where_to_get_them(tmp_path):
    card = {
        "access": "manual",
        "sources": [
            {"url": "https://x.org/consep", "filename": "consep.zip", "sha256": "a" * 64,
             "kind": "manual"}
        ],
    }  # fmt: skip
    with pytest.raises(RawDataError) as info:
        fetch_sources("CoNSeP", card, tmp_path / "raw" / "CoNSeP")
    message = str(info.value)
    assert "consep.zip" in message and "https://x.org/consep" in message and "a" * 64 in message
    with pytest.raises(RawDataError, match="registration required"):
        check_manual_drop("CoNSeP", card, tmp_path / "raw" / "CoNSeP")


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """An in-memory zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return buffer.getvalue()


def test_unpack_extracts_archives_and_copies_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "data.zip").write_bytes(zip_bytes({"Data/a.txt": b"1"}))
    (raw / "table.csv").write_text("x")
    with tarfile.open(raw / "more.tar.gz", "w:gz") as handle:
        info = tarfile.TarInfo("More/b.txt")
        info.size = 1
        handle.addfile(info, io.BytesIO(b"2"))
    card = {"sources": [{"filename": n, "kind": "http", "url": "u"}
                        for n in ("data.zip", "table.csv", "more.tar.gz")]}  # fmt: skip
    unpack_sources("X", card, raw, tmp_path / "unpacked")
    out = tmp_path / "unpacked"
    assert (out / "Data/a.txt").read_text() == "1" and (out / "More/b.txt").read_text() == "2"
    assert (out / "table.csv").read_text() == "x"


def test_truncated_archive_names_the_file_and_leaves_nothing(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    whole = zip_bytes({"Data/a.txt": b"1" * 5000})
    (raw / "data.zip").write_bytes(whole[: len(whole) // 2])
    card = {"sources": [{"filename": "data.zip", "kind": "http", "url": "u"}]}
    with pytest.raises(RawDataError, match=r"data\.zip is truncated or corrupt"):
        unpack_sources("X", card, raw, tmp_path / "unpacked")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_archive_members_cannot_escape(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "evil.zip").write_bytes(zip_bytes({"../escape.txt": b"x"}))
    card = {"sources": [{"filename": "evil.zip", "kind": "http", "url": "u"}]}
    with pytest.raises(RawDataError, match="escape"):
        unpack_sources("X", card, raw, tmp_path / "unpacked")
    assert not (tmp_path / "escape.txt").exists()


def fake_gdown_folder(monkeypatch, paths: list[str]) -> list[dict]:
    """Replace gdown's folder download: list `paths`, or write them; return its url/id args."""
    import gdown
    from gdown.download_folder import GoogleDriveFileToDownload

    calls = []

    def download_folder(output=None, skip_download=False, **kwargs):
        calls.append({k: v for k, v in kwargs.items() if k in ("url", "id")})
        if skip_download:
            return [GoogleDriveFileToDownload(id="x", path=p, local_path=p) for p in paths]
        for path in paths:
            (Path(output) / path).parent.mkdir(parents=True, exist_ok=True)
            (Path(output) / path).write_text("x")
        return paths

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    return calls


def test_gdrive_folders_above_gdowns_limit_point_at_the_final_raw_folder(tmp_path, monkeypatch):
    # Google Drive is unreachable here: gdown's entry points are replaced, the guard is real.
    fake_gdown_folder(monkeypatch, [f"masks/f{i}.png" for i in range(60)] + ["README.txt"])
    source = {"url": "FOLDER_ID", "filename": "Amgad", "kind": "gdrive_folder"}
    raw = tmp_path / "resources" / "raw" / "BCSS"
    with pytest.raises(RawDataError) as info:
        fetch_sources("BCSS", {"access": "open", "sources": [source]}, raw)
    message = str(info.value)
    assert "holds 60 files in one folder" in message and "at most 50 per folder" in message
    assert f"place it as {raw}/Amgad/ " in message and ".tmp" not in message
    assert "https://drive.google.com/drive/folders/FOLDER_ID" in message
    assert "max_folder_files: 60" in message
    assert list(raw.parent.iterdir()) == []  # nothing left, not even a temp


def test_gdrive_folders_are_limited_per_folder_and_links_are_urls(tmp_path, monkeypatch):
    # cpm17's layout: 128 files, at most 32 per folder; its card gives a link, not an id.
    paths = [f"{s}/{k}/image_{i:02d}.{k[0]}" for s in ("train", "test")
             for k in ("Images", "Labels") for i in range(32)]  # fmt: skip
    calls = fake_gdown_folder(monkeypatch, paths)
    link = "https://drive.google.com/drive/folders/1sJ4nmkif6j4s2FOGj8j6i_Ye7z9w0TfA"
    card = {
        "access": "open",
        "sources": [{"url": link, "filename": "cpm17", "kind": "gdrive_folder"}],
    }
    fetch_sources("cpm17", card, tmp_path / "raw" / "cpm17")
    assert len(list((tmp_path / "raw" / "cpm17" / "cpm17").rglob("*.I"))) == 64
    assert calls == [{"url": link}, {"url": link}]
    from densebench.data.download import fetch_gdrive

    calls = fake_gdown_folder(monkeypatch, ["a.npy"])
    fetch_gdrive({"url": "BARE_ID", "filename": "c", "kind": "gdrive_folder"}, tmp_path / "c")
    assert calls == [{"id": "BARE_ID"}, {"id": "BARE_ID"}]


def test_large_drive_folders_are_hand_drops_never_downloaded(tmp_path, monkeypatch):
    import gdown

    monkeypatch.setattr(gdown, "download_folder", lambda **kw: pytest.fail("gdown was called"))
    source = {"url": "FOLDER_ID", "filename": "Amgad", "kind": "gdrive_folder",
              "max_folder_files": 151}  # fmt: skip
    card = {"access": "open", "sources": [source]}
    raw = tmp_path / "raw" / "BCSS"
    assert needs_hand_drop(card) and not needs_hand_drop({"access": "open", "sources": []})
    with pytest.raises(RawDataError) as info:
        fetch_sources("BCSS", card, raw)
    message = str(info.value)
    assert "holds 151 files in one folder" in message and f"in {raw}/ and run again" in message
    assert (
        "Amgad/ (the whole folder)  from https://drive.google.com/drive/folders/FOLDER_ID"
        in message
    )
    with pytest.raises(RawDataError, match="needs a manual download"):
        check_manual_drop("BCSS", card, raw)
    (raw / "Amgad" / "masks").mkdir(parents=True)
    (raw / "Amgad" / "masks" / "a.png").write_text("x")
    check_manual_drop("BCSS", card, raw)
    unpack_sources("BCSS", card, raw, tmp_path / "unpacked")
    assert (tmp_path / "unpacked" / "Amgad" / "masks" / "a.png").read_text() == "x"
    assert (raw / "Amgad" / "masks" / "a.png").is_file()  # the drop is read, never moved


def test_partial_drops_say_what_is_still_missing(tmp_path):
    sources = [
        {"url": "https://x.org", "filename": n, "kind": "manual"} for n in ("a.zip", "b.zip")
    ]
    card = {"access": "manual", "sources": sources}
    (tmp_path / "a.zip").write_text("x")
    with pytest.raises(RawDataError) as info:
        check_manual_drop("W", card, tmp_path)
    lines = str(info.value).splitlines()
    assert lines[1].startswith("  a.zip") and lines[1].endswith("[already there]")
    assert lines[2].startswith("  b.zip") and "[already there]" not in lines[2]


def test_hand_drops_of_the_registry_are_the_manual_datasets_and_bcss(registries):
    dropped = {d for d, card in registries.datasets.items() if needs_hand_drop(card)}
    manual = {d for d, card in registries.datasets.items() if card["access"] == "manual"}
    assert dropped == manual | {"BCSS"}


def test_gdrive_file_is_verified(tmp_path, monkeypatch):
    import gdown

    from densebench.data.download import fetch_gdrive

    def fake_download(id, output, **kwargs):
        Path(output).write_bytes(b"abc")
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    good = hashlib.sha256(b"abc").hexdigest()
    source = {"url": "FILE_ID", "filename": "x.zip", "kind": "gdrive_file", "sha256": good}
    assert fetch_gdrive(source, tmp_path / "x.zip").read_bytes() == b"abc"
    with pytest.raises(ChecksumError):
        fetch_gdrive(dict(source, sha256="0" * 64), tmp_path / "y.zip")
    assert not (tmp_path / "y.zip").exists()
