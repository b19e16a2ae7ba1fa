"""What identifies each product: descriptive and execution edits change no identity, edits
that change the numbers do."""

from __future__ import annotations

import json

from densebench.identity import (
    snapshot_manifest,
    sources_identity,
    store_identity,
    weights_identity,
)

RECORD = {"hf_repo": "MahmoodLab/UNI", "revision": None, "display_name": "UNI", "licence": "x"}
SNAPSHOT = {"repo": "MahmoodLab/UNI", "revision": None, "commit": "3f6a" + "0" * 36}


def test_pinning_the_commit_a_snapshot_holds_is_no_change():
    before = weights_identity(RECORD, SNAPSHOT)
    assert weights_identity(dict(RECORD, revision="3f6a" + "0" * 36), SNAPSHOT) == before
    assert weights_identity(dict(RECORD, revision="3f6a"), SNAPSHOT) == before  # short sha


def test_pinning_another_revision_or_repo_is_a_change():
    before = weights_identity(RECORD, SNAPSHOT)
    assert weights_identity(dict(RECORD, revision="9e1b"), SNAPSHOT) != before
    assert weights_identity(dict(RECORD, hf_repo="MahmoodLab/UNI2-h"), SNAPSHOT) != before
    assert weights_identity(dict(RECORD, revision="3f6a"), None) != before  # nothing fetched yet


def test_descriptions_do_not_change_a_store_but_its_content_does(registries):
    card = registries.datasets["GlaS"]
    data = {"split_policy": "paper", "split_seed": 42, "split_fractions": [0.7, 0.2, 0.1]}
    base = store_identity(card, data)
    assert store_identity(dict(card, notes="new", display_name="Warwick"), data) == base
    assert store_identity(dict(card, classes=["bg", "gland", "x"]), data) != base
    assert store_identity(card, dict(data, split_seed=7)) != base
    assert sources_identity(dict(card, notes="new")) == sources_identity(card)


def test_snapshot_manifest_is_read_or_none(tmp_path):
    assert snapshot_manifest(tmp_path) is None
    (tmp_path / "SNAPSHOT.json").write_text(json.dumps(SNAPSHOT))
    assert snapshot_manifest(tmp_path) == SNAPSHOT
    (tmp_path / "SNAPSHOT.json").write_text("{half")
    assert snapshot_manifest(tmp_path) is None
