"""Run names: a run's keys and its variant (a grid cell trained at another input size or with
another training seed).

A grid cell's run is named by `RUN_KEYS` (dataset, model, strategy), any run by
`VARIANT_RUN_KEYS` (the cell's keys and the variant's name, '' for the cell's own run): their one
home, for the confusion files, the score tables and the run folders. A variant run lives beside
its cell's run, in results/runs/{dataset}/{model}/{strategy}__{name} (the authors tag such run
folders `__resize{S}`), with name `resize{S}`, `seed{n}` or `resize{S}__seed{n}`. This module
is the one home of those names and of what a variant changes in the config's `train` section
(and so in the run's spec and training identity):

* `resize{S}`: trained and tested at S by the patch rule (the largest multiple of the model's
  patch, or its `input_size_patch`, not above S: densebench.geometry.patch_rule_size), whatever
  the images' size: every image is resized to S, as the authors' `__resize{S}` runs do;
* `seed{n}`: the training seed n (initialisation, data order, augmentation) instead of
  `train.seed`.

Cheap: no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from densebench.geometry import patch_rule_size

RUN_KEYS = ("dataset", "model", "strategy")
"""What names a grid cell's run (results/runs/{dataset}/{model}/{strategy})."""
VARIANT_RUN_KEYS = (*RUN_KEYS, "variant")
"""What names any run: its cell's keys and its variant's name ('' for the cell's own run)."""

PATTERN = r"resize\d+|seed\d+|resize\d+__seed\d+"
"""Regex of a variant name (the `variant` wildcard of the run folders)."""
_PARTS = re.compile(r"(?:resize(?P<size>\d+))?(?:__)?(?:seed(?P<seed>\d+))?")


@dataclass(frozen=True)
class Variant:
    """What a variant run changes: the requested input side and/or the training seed."""

    size: int | None = None
    seed: int | None = None

    @property
    def name(self) -> str:
        """The folder suffix of the variant ('' for the cell's own run)."""
        parts = [f"resize{self.size}"] if self.size is not None else []
        parts += [f"seed{self.seed}"] if self.seed is not None else []
        return "__".join(parts)

    @classmethod
    def parse(cls, name: str) -> Variant:
        """The variant of a folder suffix ('' is the cell's own run)."""
        if not name:
            return cls()
        match = _PARTS.fullmatch(name) if re.fullmatch(PATTERN, name) else None
        if match is None:
            raise ValueError(
                f"run variant {name!r} is not resize<S>, seed<n> or resize<S>__seed<n>"
            )
        size, seed = match.group("size"), match.group("seed")
        return cls(int(size) if size else None, int(seed) if seed else None)


def of_run_folder(folder: str) -> Variant:
    """The variant of a run folder name (`<strategy>` or `<strategy>__<variant>`)."""
    _, _, name = folder.partition("__")
    return Variant.parse(name)


PLAN_KEYS = ("seeds", "share_frozen_backbone")
"""`train` keys that shape the plan, not a run: the grid's training seeds, and whether the
frozen-encoder runs of a cell share a training job (densebench.plan.sharing)."""


def variant_train(
    train: Mapping[str, Any], variant: Variant, model: Mapping[str, Any]
) -> dict[str, Any]:
    """The `train` section of a variant run of a model (a new dict; the plan's settings
    `PLAN_KEYS` are no run settings and are left out)."""
    out = {k: v for k, v in train.items() if k not in PLAN_KEYS}
    if variant.size is not None:
        out["input_size"] = patch_rule_size(variant.size, model)
    if variant.seed is not None:
        out["seed"] = variant.seed
    return out


def training_seeds(train: Mapping[str, Any]) -> list[int]:
    """The grid's training seeds (`train.seeds`, default `[train.seed]`); `train.seed` must be
    one of them: its runs are the cells' own folders."""
    seeds = list(train.get("seeds") or [train["seed"]])
    if train["seed"] not in seeds:
        raise ValueError(
            f"config train.seeds {seeds} does not hold train.seed {train['seed']}: the cells' "
            "own runs use train.seed; add it to train.seeds (or set train.seed to one of them)"
        )
    return seeds


def seed_variant(seed: int, train: Mapping[str, Any]) -> Variant:
    """The variant of a training seed of the grid (the cell's own run for `train.seed`)."""
    return Variant() if seed == train["seed"] else Variant(seed=seed)
