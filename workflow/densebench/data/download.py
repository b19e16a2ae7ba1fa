"""Raw dataset files: download (or accept a manual drop), verify sha256, unpack.

Three steps, each atomic:
- `fetch_sources` downloads every open source of a card into resources/raw/<dataset>/: plain
  URLs (https://, file://) resume from a `.part` file kept beside the folder, Google Drive ids or
  links go through gdown (a folder with 50 or more files in one subfolder is refused: gdown before
  6.0 silently truncated such folders). A file whose sha256 differs from the card is deleted.
- `check_manual_drop` explains, for a dataset a person drops by hand (`needs_hand_drop`: access
  manual, or a Drive folder whose card records `max_folder_files` >= 50), where to get each file,
  the name to drop into resources/raw/<dataset>/ and its checksum. The workflow never writes or
  deletes a hand drop: it is an input of unpack_raw, never the output of a rule.
- `check_local_copy` explains what is wrong with a dataset's local copy (config `local_copies`:
  a folder holding the card's sources by name, or a one-source card's folder or file itself,
  `local_sources`), which replaces the download or the hand drop: like a hand drop it is an input
  of unpack_raw, never an output, and is only read.
- `unpack_sources` verifies every file of the raw folder (or of the local copy) against the card
  again, then extracts archives (zip, tar, tar.gz) or copies plain files into
  resources/unpacked/<dataset>/, the folder a converter reads. A truncated or corrupt archive
  names the file and the remedy.

`fetch_split_list` downloads the authors' published split list of a paper dataset at the commit
its card pins (reference/paper_splits.md).
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from densebench.atomic import atomic_output

CHUNK = 1 << 20
SPLIT_LIST_URL = (
    "https://raw.githubusercontent.com/lingxitong/PFM_Segmentation/{commit}/configs/data/{file}"
)
"""Where the authors' split lists live (reference/paper_splits.md)."""
GDRIVE_FOLDER_LIMIT = 50
"""Files per Drive folder from which a folder is dropped by hand, not fetched. gdown < 6.0 listed at
most 50 entries per folder and returned a truncated copy; the pinned gdown 6.5.1 lists folders via
embeddedfolderview without that cap (gdown PR #453), not yet tried on the large folders here."""


class ChecksumError(ValueError):
    """A file does not have the sha256 its card declares (`got`, `expected`: both checksums)."""

    def __init__(self, message: str, got: str = "", expected: str = "") -> None:
        super().__init__(message)
        self.got, self.expected = got, expected


class RawDataError(ValueError):
    """Raw files are missing, truncated or not what the card describes."""


class DownloadError(OSError):
    """A URL could not be reached or read (offline, host down, file gone): `url`, `reason`."""

    def __init__(self, message: str, url: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.url, self.reason = url, reason


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
            "the card if the source changed",
            got,
            sha256,
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
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = offset and getattr(response, "status", 200) == 206
            with open(part, "ab" if resumed else "wb") as out:
                shutil.copyfileobj(response, out, CHUNK)
    except urllib.error.URLError as err:
        raise DownloadError(
            f"could not download {url} to {dest}: {err.reason}; without internet here, "
            f"download it elsewhere and place it at {dest} (a file placed there is kept)",
            url,
            str(err.reason),
        ) from err
    try:
        verify(part, sha256, url)
    except ChecksumError:
        part.unlink()
        raise
    part.replace(dest)
    return dest


def fetch_split_list(dataset: str, card: dict[str, Any], out: Path) -> str:
    """Download a dataset's split list (card `split_list`: commit, file, sha256); say what came."""
    listing = card.get("split_list")
    if not listing:
        raise ValueError(f"dataset {dataset}: its card has no split_list")
    url = SPLIT_LIST_URL.format(**listing)
    try:
        path = fetch(url, out, listing.get("sha256"))
    except DownloadError as err:
        raise DownloadError(
            f"dataset {dataset}: the authors' split list: {err}; or split it without the "
            "list: data.split_policy seeded (or official, where the card has a test split)",
            err.url,
            err.reason,
        ) from err
    return f"{dataset}: {url} sha256 {sha256sum(path)}"


def is_link(url: str) -> bool:
    """Whether a card url is a web address (else a bare Google Drive id)."""
    return url.startswith(("http://", "https://"))


def drive_url(source: dict[str, Any]) -> str:
    """The browser address of a Google Drive source, whose card url may be a bare id."""
    url = source["url"]
    if is_link(url) or not source["kind"].startswith("gdrive"):
        return url
    if source["kind"] == "gdrive_folder":
        return f"https://drive.google.com/drive/folders/{url}"
    return f"https://drive.google.com/file/d/{url}/view"


def _gdown_target(source: dict[str, Any]) -> dict[str, str]:
    """gdown's keyword for a card url: `url` for a Drive link, `id` for a bare id."""
    url = source["url"]
    return {"url": url} if is_link(url) else {"id": url}


def too_big_for_gdown(source: dict[str, Any]) -> bool:
    """Whether the card records a Drive folder at or above gdown's per-folder file limit."""
    large = source.get("max_folder_files", 0) >= GDRIVE_FOLDER_LIMIT
    return source["kind"] == "gdrive_folder" and large


def needs_hand_drop(card: dict[str, Any]) -> bool:
    """Whether a person drops the dataset's raw files by hand (the workflow never fetches them)."""
    sources = card.get("sources") or []
    by_hand = any(s["kind"] == "manual" or too_big_for_gdown(s) for s in sources)
    return card.get("access") == "manual" or by_hand


def _largest_folder(listing: list[Any]) -> int:
    """The most files listed in one folder of a gdown folder listing (items with a .path)."""
    folders = Counter(PurePosixPath(getattr(item, "path", str(item))).parent for item in listing)
    return max(folders.values(), default=0)


def fetch_gdrive(source: dict[str, Any], dest: Path, raw_dir: Path | None = None) -> Path:
    """Download a Google Drive file or folder (id or link) with gdown into dest.

    A folder with GDRIVE_FOLDER_LIMIT or more files in one subfolder is refused with the
    instructions for a hand drop into raw_dir (the dataset's final raw folder, default dest's).
    """
    import gdown

    target = _gdown_target(source)
    if source["kind"] == "gdrive_file":
        with atomic_output(dest) as tmp:
            gdown.download(**target, output=str(tmp), quiet=True, resume=False)
            verify(tmp, source.get("sha256"), source["url"])
        return dest
    listing = gdown.download_folder(**target, skip_download=True, quiet=True)
    largest = _largest_folder(listing)
    if largest >= GDRIVE_FOLDER_LIMIT:
        drop = Path(raw_dir or Path(dest).parent) / source["filename"]
        raise RawDataError(
            f"Google Drive folder {drive_url(source)} holds {largest} files in one folder; gdown "
            f"may fetch at most {GDRIVE_FOLDER_LIMIT} per folder and return a truncated copy. "
            f"Download it in a browser, place it as {drop}/ and add `max_folder_files: {largest}` "
            "to this source in config/datasets.yaml, so that the workflow takes your copy and "
            "never downloads (nor deletes) it"
        )
    with atomic_output(dest) as tmp:
        gdown.download_folder(**target, output=str(tmp), quiet=True)
    return dest


def fetch_source(dataset: str, source: dict[str, Any], partial: Path) -> Path:
    """Download one http source of a dataset into its resumable partial folder."""
    try:
        return fetch(source["url"], partial / source["filename"], source.get("sha256"))
    except DownloadError as err:
        raise DownloadError(
            f"dataset {dataset}: could not download {err.url}: {err.reason}; without internet "
            f"here, download its sources elsewhere and name them in your config under "
            f"`local_copies: {{{dataset}: PATH}}` (config/README.md, Local copies of datasets)",
            err.url,
            err.reason,
        ) from err


def fetch_sources(dataset: str, card: dict[str, Any], out_dir: Path) -> None:
    """Fetch every open source of a dataset card into out_dir (atomic as a whole)."""
    sources = card.get("sources") or []
    if not sources:
        raise RawDataError(f"dataset {dataset}: its card lists no sources; add them to its card")
    if needs_hand_drop(card):
        raise RawDataError(manual_instructions(dataset, card, Path(out_dir)))
    partial = Path(out_dir).parent / ".partial" / dataset  # resumable downloads live here
    try:
        with atomic_output(Path(out_dir)) as tmp:
            tmp.mkdir()
            for source in sources:
                if source["kind"] == "http":
                    fetch_source(dataset, source, partial).replace(tmp / source["filename"])
                else:
                    fetch_gdrive(source, tmp / source["filename"], raw_dir=Path(out_dir))
    finally:
        for folder in (partial, partial.parent):  # keep only unfinished downloads
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _hand_drop_reason(card: dict[str, Any]) -> str:
    """Why a dataset is dropped by hand, in words."""
    large = [s for s in card.get("sources") or [] if too_big_for_gdown(s)]
    if card.get("access") == "manual" or not large:
        return "registration required"
    return (
        f"its Google Drive folder holds {large[0]['max_folder_files']} files in one folder, "
        f"above gdown's {GDRIVE_FOLDER_LIMIT}-file limit"
    )


def _is_folder(source: dict[str, Any]) -> bool:
    """Whether a source is dropped as a folder (a Drive folder), not as one file."""
    return source["kind"] == "gdrive_folder"


def missing_sources(card: dict[str, Any], raw_dir: Path) -> list[dict[str, Any]]:
    """The card's sources not (yet) in raw_dir: files must be files, Drive folders folders."""
    missing = []
    for source in card.get("sources") or []:
        path = Path(raw_dir) / source["filename"]
        if not (path.is_dir() if _is_folder(source) else path.is_file()):
            missing.append(source)
    return missing


def manual_instructions(dataset: str, card: dict[str, Any], raw_dir: Path) -> str:
    """What a user must download by hand, from where, under which name and checksum."""
    lines = [
        f"dataset {dataset} needs a manual download ({_hand_drop_reason(card)}); place these "
        f"files in {raw_dir}/ and run again:"
    ]
    missing = missing_sources(card, raw_dir)
    for source in card.get("sources") or []:
        record = f"resources/unpacked/{dataset}/SOURCES.sha256"
        published = source.get("sha256") or f"not published: recorded on first use in {record}"
        checksum = f"sha256 {published}"
        name = source["filename"]
        if _is_folder(source):
            name, checksum = f"{name}/ (the whole folder)", "no checksum"
        there = "" if source in missing else "  [already there]"
        lines.append(f"  {name}  from {drive_url(source)}  ({checksum}){there}")
    return "\n".join(lines)


def check_manual_drop(dataset: str, card: dict[str, Any], raw_dir: Path) -> None:
    """Raise with instructions when any source of the card is missing from raw_dir."""
    if missing_sources(card, raw_dir):
        raise RawDataError(manual_instructions(dataset, card, Path(raw_dir)))


LOCAL_KEY = "local_copies"
"""The config key that points a dataset at a local copy of its raw files."""


def local_sources(card: dict[str, Any], local: Path) -> dict[str, Path]:
    """Where each source of a card lies in a local copy (config `local_copies`), {} if the copy is
    not what the card describes: either a folder holding every source under its card name (the
    layout of resources/raw/<dataset>/), or, for a card with one source, that source itself (a
    folder for a Drive folder, else the file, e.g. the archive)."""
    local = Path(local).expanduser()
    sources = card.get("sources") or []
    if sources and local.is_dir() and not missing_sources(card, local):
        return {s["filename"]: local / s["filename"] for s in sources}
    if len(sources) == 1 and (local.is_dir() if _is_folder(sources[0]) else local.is_file()):
        return {sources[0]["filename"]: local}
    return {}


def local_copy_problem(dataset: str, card: dict[str, Any], local: Path) -> str | None:
    """Why a dataset's local copy cannot be used (None if it can): missing, or not the card's."""
    where = f"dataset {dataset}: its local copy {local} (config `{LOCAL_KEY}`)"
    raw = f"resources/raw/{dataset}/"
    instead = (
        f"drop its files by hand into {raw}"
        if needs_hand_drop(card)
        else f"have the workflow download it into {raw}"
    )
    if not Path(local).expanduser().exists():
        return (
            f"{where} does not exist. Remedy: correct its path under `{LOCAL_KEY}` in the config "
            "(absolute, or relative to the working directory: where resources/ and results/ "
            f"are), or remove the entry to {instead}"
        )
    if local_sources(card, local):
        return None
    sources = card.get("sources") or []
    if not sources:
        return f"{where}: its card lists no sources; add them to its card"
    names = ", ".join(s["filename"] + ("/" if _is_folder(s) else "") for s in sources)
    lines = [f"{where} is not what its card describes; it must be a folder holding {names}"]
    if len(sources) == 1:
        kind = "folder" if _is_folder(sources[0]) else "file"
        lines[0] += f", or that {kind} itself (under any name)"
    lines += [
        f"  missing: {s['filename']}  from {drive_url(s)}" for s in missing_sources(card, local)
    ]
    lines.append(
        f"Remedy: point `{LOCAL_KEY}.{dataset}` at such a copy, or remove the entry to {instead}"
    )
    return "\n".join(lines)


def check_local_copy(dataset: str, card: dict[str, Any], local: Path) -> None:
    """Raise with the remedy when a dataset's local copy is missing or not the card's."""
    problem = local_copy_problem(dataset, card, local)
    if problem:
        raise RawDataError(problem)


def unpack_sources(
    dataset: str,
    card: dict[str, Any],
    raw_dir: Path | None,
    out_dir: Path,
    local: Path | None = None,
) -> None:
    """Verify every source file again, then extract or copy them into out_dir (atomic): from
    raw_dir, or from the dataset's local copy `local` (config `local_copies`), which is only read,
    never changed."""
    if local is not None:
        check_local_copy(dataset, card, local)
        paths = local_sources(card, local)
        remedy = (
            f"replace it in the local copy (config `{LOCAL_KEY}`; the workflow never changes it) "
            "with an intact copy of the version the card describes, or update the card if the "
            "source changed"
        )
    else:
        raw_dir = Path(raw_dir)
        if needs_hand_drop(card):
            check_manual_drop(dataset, card, raw_dir)
        paths = {s["filename"]: raw_dir / s["filename"] for s in card.get("sources") or []}
        remedy = "delete it and fetch it again"
    with atomic_output(Path(out_dir)) as tmp:
        tmp.mkdir()
        for source in card.get("sources") or []:
            name, path = source["filename"], paths[source["filename"]]
            if not path.exists():
                raise RawDataError(
                    f"dataset {dataset}: {path} is missing; fetch it again with: "
                    f"snakemake --cores 1 --forcerun download_raw resources/raw/{dataset}"
                )
            if path.is_file():
                try:
                    verify(path, source.get("sha256"), str(path))
                except ChecksumError as error:
                    if local is None:
                        raise
                    raise RawDataError(
                        f"dataset {dataset}: {path} has sha256 {error.got} but the card expects "
                        f"{error.expected}: a damaged copy or another version; {remedy}"
                    ) from error
                with open(tmp / "SOURCES.sha256", "a") as record:  # provenance, sha256sum format
                    record.write(f"{sha256sum(path)}  {name}\n")
            if path.is_dir():
                shutil.copytree(path, tmp / name)
            elif source.get("extract", True) and is_archive(Path(name)):  # the card says
                extract(path, tmp, dataset, remedy)
            else:
                shutil.copy2(path, tmp / name)


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    """Whether a file is an archive by its name (a damaged one must fail, not be copied)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(
    archive: Path, out_dir: Path, dataset: str, remedy: str = "delete it and fetch it again"
) -> None:
    """Unpack a zip or tar archive safely (no member may escape out_dir); a damaged one fails
    with the remedy."""
    root = out_dir.resolve()
    try:
        if archive.name.lower().endswith(".zip") or zipfile.is_zipfile(archive):
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
            f"dataset {dataset}: archive {archive} is truncated or corrupt ({error}); {remedy}"
        ) from error


def _check_members(names: list[str], root: Path, archive: Path) -> None:
    """Refuse archives with absolute paths or '..' members."""
    for name in names:
        target = (root / name).resolve()
        if root not in target.parents and target != root:
            raise RawDataError(f"archive {archive}: member {name!r} would escape the folder")
