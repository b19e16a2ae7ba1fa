"""Raw dataset files: download (or accept a manual drop), verify sha256, unpack.

Three steps, each atomic:
- `fetch_sources` downloads every open source of a card into resources/raw/<dataset>/: plain
  URLs (https://, file://) resume from a `.part` file kept beside the folder, Google Drive ids go
  through gdown (folders are refused above gdown's 50-file limit, which would silently truncate
  them). A file whose sha256 differs from the card is deleted and reported.
- `check_manual_drop` explains, for a registration-only dataset, where to get each file, the
  file name to drop into resources/raw/<dataset>/ and its checksum.
- `unpack_sources` verifies every file of the raw folder against the card again, then extracts
  archives (zip, tar, tar.gz) or copies plain files into resources/unpacked/<dataset>/, the
  folder a converter reads. A truncated or corrupt archive names the file and the remedy.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from densebench.atomic import atomic_output

CHUNK = 1 << 20
GDRIVE_FOLDER_LIMIT = 50
"""gdown's folder download stops at 50 files (it warns, then returns a truncated folder)."""


class ChecksumError(ValueError):
    """A file does not have the sha256 its card declares."""


class RawDataError(ValueError):
    """Raw files are missing, truncated or not what the card describes."""


def sha256sum(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, sha256: str | None, source: str) -> None:
    """Raise ChecksumError (and delete nothing) when a file's sha256 differs from the card."""
    if sha256 is None:
        return
    got = sha256sum(path)
    if got != sha256:
        raise ChecksumError(
            f"{path.name} from {source}: sha256 {got} but the card expects {sha256}; the file is "
            "corrupt, truncated or a different version — delete it and fetch it again, or update "
            "the card if the source changed"
        )


def fetch(url: str, dest: Path, sha256: str | None = None) -> Path:
    """Download url to dest, resuming a previous partial download; verify; rename when whole."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f".{dest.name}.part"
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url)
    if offset and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(request, timeout=60) as response:
        resumed = offset and getattr(response, "status", 200) == 206
        with open(part, "ab" if resumed else "wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    try:
        verify(part, sha256, url)
    except ChecksumError:
        part.unlink()
        raise
    part.replace(dest)
    return dest


def fetch_gdrive(source: dict[str, Any], dest: Path) -> Path:
    """Download a Google Drive file or folder id with gdown (folders: at most 50 files)."""
    import gdown

    if source["kind"] == "gdrive_file":
        with atomic_output(dest) as tmp:
            gdown.download(id=source["url"], output=str(tmp), quiet=True, resume=False)
            verify(tmp, source.get("sha256"), source["url"])
        return dest
    listing = gdown.download_folder(id=source["url"], skip_download=True, quiet=True)
    if len(listing) >= GDRIVE_FOLDER_LIMIT:
        raise RawDataError(
            f"Google Drive folder {source['url']} lists {len(listing)} files; gdown fetches at "
            f"most {GDRIVE_FOLDER_LIMIT} per folder and would return a truncated copy. Download "
            f"it in a browser and drop it as {dest}"
        )
    with atomic_output(dest) as tmp:
        gdown.download_folder(id=source["url"], output=str(tmp), quiet=True)
    return dest


def fetch_sources(dataset: str, card: dict[str, Any], out_dir: Path) -> None:
    """Fetch every open source of a dataset card into out_dir (atomic as a whole)."""
    sources = card.get("sources") or []
    if not sources:
        raise RawDataError(f"dataset {dataset}: its card lists no sources; add them to its card")
    manual = [s for s in sources if s["kind"] == "manual"]
    if manual:
        raise RawDataError(manual_instructions(dataset, card, Path(out_dir)))
    partial = Path(out_dir).parent / ".partial" / dataset  # resumable downloads live here
    try:
        with atomic_output(Path(out_dir)) as tmp:
            tmp.mkdir()
            for source in sources:
                if source["kind"] == "http":
                    fetch(source["url"], partial / source["filename"], source.get("sha256"))
                    (partial / source["filename"]).replace(tmp / source["filename"])
                else:
                    fetch_gdrive(source, tmp / source["filename"])
    finally:
        for folder in (partial, partial.parent):  # keep only unfinished downloads
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def manual_instructions(dataset: str, card: dict[str, Any], raw_dir: Path) -> str:
    """What a user must download by hand, from where, under which name and checksum."""
    lines = [
        f"dataset {dataset} needs a manual download (registration required); place these files "
        f"in {raw_dir}/ and run again:"
    ]
    for source in card.get("sources") or []:
        checksum = source.get("sha256") or (
            f"not published: recorded on first use in resources/unpacked/{dataset}/SOURCES.sha256"
        )
        lines.append(f"  {source['filename']}  from {source['url']}  (sha256 {checksum})")
    return "\n".join(lines)


def check_manual_drop(dataset: str, card: dict[str, Any], raw_dir: Path) -> None:
    """Raise with instructions when any source file of the card is missing from raw_dir."""
    missing = [
        s for s in card.get("sources") or [] if not (Path(raw_dir) / s["filename"]).is_file()
    ]
    if missing:
        raise RawDataError(manual_instructions(dataset, card, Path(raw_dir)))


def unpack_sources(dataset: str, card: dict[str, Any], raw_dir: Path, out_dir: Path) -> None:
    """Verify every source file again, then extract or copy them into out_dir (atomic)."""
    raw_dir = Path(raw_dir)
    if card.get("access") == "manual":
        check_manual_drop(dataset, card, raw_dir)
    with atomic_output(Path(out_dir)) as tmp:
        tmp.mkdir()
        for source in card.get("sources") or []:
            path = raw_dir / source["filename"]
            if not path.exists():
                raise RawDataError(
                    f"dataset {dataset}: {path} is missing; fetch it again with: "
                    f"snakemake --cores 1 --forcerun download_raw resources/raw/{dataset}"
                )
            if path.is_file():
                verify(path, source.get("sha256"), str(path))
                with open(tmp / "SOURCES.sha256", "a") as record:  # provenance, sha256sum format
                    record.write(f"{sha256sum(path)}  {source['filename']}\n")
            if path.is_dir():
                shutil.copytree(path, tmp / path.name)
            elif source.get("extract", True) and is_archive(path):
                extract(path, tmp, dataset)
            else:
                shutil.copy2(path, tmp / path.name)


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    """Whether a file is an archive by its name (a damaged one must fail, not be copied)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(archive: Path, out_dir: Path, dataset: str) -> None:
    """Unpack a zip or tar archive safely (no member may escape out_dir)."""
    root = out_dir.resolve()
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as handle:
                _check_members(handle.namelist(), root, archive)
                bad = handle.testzip()
                if bad is not None:
                    raise zipfile.BadZipFile(f"member {bad} fails its CRC check")
                handle.extractall(out_dir)
        else:
            with tarfile.open(archive) as handle:
                _check_members(handle.getnames(), root, archive)
                handle.extractall(out_dir, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise RawDataError(
            f"dataset {dataset}: archive {archive} is truncated or corrupt ({error}); delete it "
            "and fetch it again"
        ) from error


def _check_members(names: list[str], root: Path, archive: Path) -> None:
    """Refuse archives with absolute paths or '..' members."""
    for name in names:
        target = (root / name).resolve()
        if root not in target.parents and target != root:
            raise RawDataError(f"archive {archive}: member {name!r} would escape the folder")
