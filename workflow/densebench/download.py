"""Downloads of raw dataset files by URL, with sha256 verification (weights: densebench.weights).

Files are streamed to a temporary name, verified, then renamed; a partial download never takes
the final name. Works for https:// and file:// URLs (tests serve archives from local files).
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from densebench.atomic import atomic_output

CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A downloaded file does not have the sha256 its card declares."""


def sha256sum(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, sha256: str | None = None) -> Path:
    """Download url to dest atomically; verify sha256 when given (mismatch: nothing kept)."""
    dest = Path(dest)
    with atomic_output(dest) as tmp:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
        if sha256 is not None:
            got = sha256sum(tmp)
            if got != sha256:
                raise ChecksumError(
                    f"{dest.name} from {url}: sha256 {got} but the card expects {sha256}; "
                    "the file is corrupt or a different version — delete it and download again, "
                    "or update the card if the source changed"
                )
    return dest


def fetch_dataset(dataset: str, card: dict[str, Any], out_dir: Path) -> None:
    """Fetch every source file of a dataset card into out_dir (atomic as a whole)."""
    sources = card.get("sources") or []
    if not sources:
        raise ValueError(
            f"dataset {dataset}: its card lists no download sources yet; place the raw files "
            f"in resources/raw/{dataset}/ by hand (see {card.get('homepage', 'its homepage')})"
        )
    with atomic_output(Path(out_dir)) as tmp:
        tmp.mkdir()
        for source in sources:
            fetch(source["url"], tmp / source["filename"], source.get("sha256"))
