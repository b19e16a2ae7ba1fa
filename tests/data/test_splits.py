"""Tests of split assignment: group-disjointness, determinism, fractions, official test, errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from densebench.data.splits import assign_splits, paper_positions, paper_split
from tests.paper_lists import TEST_ORDER, list_stems, listing

FRACTIONS = (0.7, 0.2, 0.1)


def make_groups(n_groups: int, seed: int = 0) -> list[str]:
    """Sample group ids: n_groups groups of 1..5 samples, interleaved."""
    rng = np.random.default_rng(seed)
    groups = [f"g{g}" for g in range(n_groups) for _ in range(int(rng.integers(1, 6)))]
    return [groups[i] for i in rng.permutation(len(groups))]


def split_of_group(groups: list[str], splits: list[str]) -> dict[str, set[str]]:
    """Group -> set of splits its samples went to."""
    out: dict[str, set[str]] = {}
    for g, s in zip(groups, splits, strict=True):
        out.setdefault(g, set()).add(s)
    return out


def test_seeded_group_disjoint_and_fractions():
    """Every group sits in one split; sample fractions approach the targets."""
    groups = make_groups(120)
    splits = assign_splits(groups, [None] * len(groups), "seeded", FRACTIONS, seed=1)
    assert all(len(s) == 1 for s in split_of_group(groups, splits).values())
    counts = Counter(splits)
    for name, frac in zip(("train", "val", "test"), FRACTIONS, strict=True):
        assert abs(counts[name] / len(groups) - frac) < 0.02


def test_seeded_deterministic_and_seed_dependent():
    """Same inputs give the same split; another seed gives another split."""
    groups = make_groups(40)
    a = assign_splits(groups, [None] * len(groups), "seeded", FRACTIONS, seed=7)
    b = assign_splits(list(groups), [None] * len(groups), "seeded", FRACTIONS, seed=7)
    c = assign_splits(groups, [None] * len(groups), "seeded", FRACTIONS, seed=8)
    assert a == b and a != c


@pytest.mark.parametrize("fractions", [FRACTIONS, (0.98, 0.01, 0.01), (0.1, 0.1, 0.8)])
def test_seeded_three_groups_all_splits_non_empty(fractions):
    """With >= 3 groups every split gets at least one group, even for extreme fractions."""
    groups = ["a"] * 10 + ["b"] * 3 + ["c"] * 1 + ["d"] * 2
    splits = assign_splits(groups, [None] * len(groups), "seeded", fractions, seed=0)
    assert set(splits) == {"train", "val", "test"}
    assert all(len(s) == 1 for s in split_of_group(groups, splits).values())


def test_official_keeps_test_and_carves_val_group_disjoint():
    """Official test stays test; the rest is split train/val by group at f0:f1."""
    groups = make_groups(60, seed=3)
    official = ["test" if int(g[1:]) % 4 == 0 else "train" for g in groups]
    splits = assign_splits(groups, official, "official", FRACTIONS, seed=2)
    assert [s == "test" for s in splits] == [o == "test" for o in official]
    assert all(len(s) == 1 for s in split_of_group(groups, splits).values())
    n_train, n_val = splits.count("train"), splits.count("val")
    assert n_val > 0 and abs(n_train / (n_train + n_val) - 0.7 / 0.9) < 0.05
    assert splits == assign_splits(groups, official, "official", FRACTIONS, seed=2)


def test_official_with_own_val_and_none_entries():
    """An official val split is kept; samples without an official split join train."""
    official = ["train", None, "val", "test", "test"]
    splits = assign_splits(["a", "b", "c", "d", "e"], official, "official", FRACTIONS, seed=0)
    assert splits == ["train", "train", "val", "test", "test"]


def test_official_without_official_split():
    """No official split at all: the error names the policy and suggests 'seeded'."""
    with pytest.raises(ValueError, match=r"'official'.*'seeded'"):
        assign_splits(["a", "b"], [None, None], "official", FRACTIONS, seed=0)
    with pytest.raises(ValueError, match="seeded"):
        assign_splits(["a", "b"], ["train", "train"], "official", FRACTIONS, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "paperish"}, "official, seeded"),
        ({"fractions": (0.5, 0.2, 0.1)}, "summing to 1"),
        ({"fractions": (1.2, -0.1, -0.1)}, "non-negative"),
        ({"official": [None]}, "must match"),
    ],
)
def test_errors(kwargs, message):
    """Unknown policy, bad fractions and mismatched lengths are rejected clearly."""
    args = {"groups": ["a", "b", "c"], "official": [None] * 3, "policy": "seeded"}
    args |= {"fractions": FRACTIONS, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        assign_splits(**args)


def test_paper_positions_follow_the_published_list_order():
    """Each sample's position in its split of the authors' list; None if the list omits it."""
    ids = [*sorted(list_stems("train") + list_stems("val") + list_stems("test")), "unlisted_0"]
    positions = paper_positions(ids, listing(), "TNBC")
    splits = paper_split(ids, listing(), "TNBC")
    assert positions[-1] is None and splits[-1] == "unused"
    for split in ("train", "val", "test"):
        members = [(p, i) for i, s, p in zip(ids, splits, positions, strict=True) if s == split]
        assert [i for _, i in sorted(members)] == list_stems(split)
    test = sorted((p, i) for i, s, p in zip(ids, splits, positions, strict=True) if s == "test")
    assert tuple(i for _, i in test) == TEST_ORDER
    assert [i for i, s in zip(ids, splits, strict=True) if s == "test"] != list(TEST_ORDER)
