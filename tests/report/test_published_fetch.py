"""Tests for the published results as a source: download at the pinned commit, sha256 checks.

Downloads are tested offline against a local HTTP server serving the committed published files
(tests/fixtures/published/SOURCE.md) and against file:// URLs.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator

import pytest

from densebench.data.download import ChecksumError
from densebench.report.published import (
    PUBLISHED_COMMIT,
    check_published,
    fetch_published,
    published_url,
)
from tests.conftest import FIXTURES

PUBLISHED = FIXTURES / "published"


def pinned_sums() -> dict[str, str]:
    """The published files' sha256 as SHA256SUMS lists them: stem -> hex."""
    lines = (PUBLISHED / "SHA256SUMS").read_text().split("\n")
    return {
        name.removesuffix(".json"): digest for digest, name in (ln.split() for ln in lines if ln)
    }


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """Base URL of a local HTTP server laid out like the authors' repository (Data/<stem>.json)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/published"
    httpd.shutdown()
    httpd.server_close()


def test_registry_pins_the_published_checksums(registries):
    pinned = {
        r["published"]: r["published_sha256"]
        for r in registries.strategies.values()
        if "published_sha256" in r
    }
    assert pinned == pinned_sums()


def test_url_is_the_pinned_commit():
    url = published_url("cnn")
    assert url == (
        "https://raw.githubusercontent.com/M4A1TasteGood/PFM-DenseBench/"
        "4889b1e9abf179d25cc3d8a5902a60fda82a5c93/Data/cnn.json"
    )
    assert PUBLISHED_COMMIT in url


def test_fetch_over_http_verifies_and_renames(tmp_path, server):
    dest = tmp_path / "resources/published/lora.json"
    fetch_published("lora", pinned_sums()["lora"], dest, url=f"{server}/lora.json")
    assert dest.read_bytes() == (PUBLISHED / "lora.json").read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["lora.json"]  # no temporaries


def test_fetch_mismatch_names_both_checksums_and_leaves_nothing(tmp_path, server):
    dest = tmp_path / "lora.json"
    wrong = pinned_sums()["dora"]
    with pytest.raises(ChecksumError) as err:
        fetch_published("lora", wrong, dest, url=f"{server}/lora.json")
    text = str(err.value)
    assert str(dest) in text and wrong in text and pinned_sums()["lora"] in text
    assert "remedy" in text
    assert list(tmp_path.iterdir()) == []


def test_fetch_from_a_file_url(tmp_path):
    dest = tmp_path / "frozen.json"
    url = (PUBLISHED / "frozen.json").as_uri()
    fetch_published("frozen", pinned_sums()["frozen"], dest, url=url)
    assert dest.read_bytes() == (PUBLISHED / "frozen.json").read_bytes()


def test_hand_drop_is_checked_and_kept(tmp_path):
    drop = tmp_path / "cnn.json"
    shutil.copy(PUBLISHED / "cnn.json", drop)
    check_published(drop, pinned_sums()["cnn"])  # the right file passes
    drop.write_bytes(drop.read_bytes()[:-10])  # truncated by hand
    with pytest.raises(ChecksumError) as err:
        check_published(drop, pinned_sums()["cnn"])
    assert str(drop) in str(err.value) and pinned_sums()["cnn"] in str(err.value)
    assert drop.exists()  # a hand drop is never deleted


def test_missing_file_names_the_url(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Data/dora\.json"):
        check_published(tmp_path / "dora.json", pinned_sums()["dora"])
