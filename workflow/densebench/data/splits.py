"""Train/val/test assignment: group-disjoint ("seeded"), the dataset's own ("official"), or the
authors' published lists ("paper").

All policies are deterministic functions of their inputs. Groups (patients, slides) never
straddle train/val/test except where an official split or the authors' lists do so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

POLICIES = ("official", "seeded")
"""Policies computed from the samples alone; "paper" also needs the authors' list."""
UNUSED = "unused"
"""Split of samples the authors' lists leave out (kept in the store, never read)."""
SPLITS = ("train", "val", "test")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate (train, val, test) fractions: three non-negative numbers summing to 1."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split fractions {tuple(fractions)} must be three non-negative numbers "
            "(train, val, test) summing to 1, e.g. (0.7, 0.2, 0.1)"
        )
    return float(fractions[0]), float(fractions[1]), float(fractions[2])


def group_split(
    groups: Sequence[str], fractions: Sequence[float], seed: int, names: Sequence[str] = SPLITS
) -> list[str]:
    """Assign whole groups to `names` so that sample counts approach `fractions`."""
    sizes = Counter(groups)
    order = [sorted(sizes)[i] for i in np.random.default_rng(seed).permutation(len(sizes))]
    targets = np.asarray(fractions, float) * len(groups)
    counts = np.zeros(len(names))
    members: list[list[str]] = [[] for _ in names]
    for group in order:
        k = int(np.argmax(targets - counts))  # split furthest below its target
        members[k].append(group)
        counts[k] += sizes[group]
    _fill_empty(members, counts, sizes, np.asarray(fractions) > 0)
    where = {g: names[k] for k, gs in enumerate(members) for g in gs}
    return [where[g] for g in groups]


def _fill_empty(
    members: list[list[str]], counts: np.ndarray, sizes: Counter, wanted: np.ndarray
) -> None:
    """Give every wanted-but-empty split the smallest group of the split with most groups."""
    for k in range(len(members)):
        if members[k] or not wanted[k]:
            continue
        donor = max(range(len(members)), key=lambda j: (len(members[j]), -j))
        if len(members[donor]) < 2:
            return
        group = min(members[donor], key=lambda g: (sizes[g], g))
        members[donor].remove(group)
        members[k].append(group)
        counts[donor] -= sizes[group]
        counts[k] += sizes[group]


def _official(
    groups: Sequence[str],
    official: Sequence[str | None],
    fractions: tuple[float, float, float],
    seed: int,
) -> list[str]:
    """Keep official test (and val, if any); carve val from the rest group-disjointly."""
    bad = sorted({str(o) for o in official if o not in (None, *SPLITS)})
    if bad:
        raise ValueError(f"official split values {bad} are not one of {list(SPLITS)} or None")
    if all(o is None for o in official):
        raise ValueError(
            "split policy 'official' needs an official split but no sample has one; "
            "use split policy 'seeded' for this dataset"
        )
    if "test" not in official:
        raise ValueError(
            "split policy 'official': no sample is in the official test split; "
            "use split policy 'seeded' for this dataset"
        )
    result = [o if o in ("test", "val") else "" for o in official]
    rest = [i for i, r in enumerate(result) if not r]
    if "val" in official:  # the dataset defines its own validation set
        for i in rest:
            result[i] = "train"
        return result
    total = fractions[0] + fractions[1]
    ratio = (fractions[0] / total, fractions[1] / total) if total > 0 else (1.0, 0.0)
    sub = group_split([groups[i] for i in rest], ratio, seed, names=("train", "val"))
    for i, s in zip(rest, sub, strict=True):
        result[i] = s
    return result


def assign_splits(
    groups: Sequence[str],
    official: Sequence[str | None],
    policy: str,
    fractions: tuple[float, float, float],
    seed: int,
) -> list[str]:
    """Return "train"/"val"/"test" for each sample under the given split policy."""
    if policy not in POLICIES:
        raise ValueError(f"unknown split policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    if len(groups) != len(official):
        raise ValueError(f"{len(groups)} groups but {len(official)} official splits; must match")
    fractions = _check_fractions(fractions)
    groups = [str(g) for g in groups]
    if policy == "seeded":
        return group_split(groups, fractions, seed)
    return _official(groups, list(official), fractions, seed)


def _list_index(listing: dict, dataset: str) -> dict[str, tuple[str, int]]:
    """Map each file stem of the authors' list to (its split, its position in that split)."""
    from pathlib import PurePosixPath

    index: dict[str, tuple[str, int]] = {}
    for split, entries in listing["data"].items():
        for position, entry in enumerate(entries):
            stem = PurePosixPath(entry["image_path"]).stem
            if stem in index:
                raise ValueError(f"dataset {dataset}: {stem} appears twice in the paper's lists")
            index[stem] = (split, position)
    return index


def paper_positions(sample_ids: Sequence[str], listing: dict, dataset: str) -> list[int | None]:
    """Position of each sample within its split of the authors' list (None if unlisted).

    The authors iterate a split in list order: ``JSONSegmentationDataset._load_data_items``
    (data/seg_dataset.py) keeps the JSON order and ``scripts/infer_bootstrap.py::main`` loads the
    test split unshuffled, so ``bootstrap_evaluation``'s image index i is the i-th test entry.
    """
    index = _list_index(listing, dataset)
    return [index[s][1] if s in index else None for s in sample_ids]


def paper_split(sample_ids: Sequence[str], listing: dict, dataset: str) -> list[str]:
    """Splits from the authors' published list, whose entries are matched by file stem.

    Every listed sample must exist among ours (else the converter's naming is wrong); our samples
    the list leaves out go to UNUSED.
    """
    index = {stem: split for stem, (split, _) in _list_index(listing, dataset).items()}
    known = set(sample_ids)
    unmapped = sorted(stem for stem in index if stem not in known)
    if unmapped:
        raise ValueError(
            f"dataset {dataset}: {len(unmapped)} of {len(index)} samples of the paper's split list "
            f"have no converted sample (first: {', '.join(unmapped[:3])}); the converter must "
            "name samples exactly as the authors' preprocessing does"
        )
    return [index.get(sample_id, UNUSED) for sample_id in sample_ids]
