"""The names a report covers (``Grid``), in order, with what the figures and tables show of them.

Every report product takes the grid of its results source from the workflow
(``report_grid_json`` in workflow/rules/common.smk): the config's datasets, models and
strategies in config order, their display names, dataset categories and model sizes
(``params_m``). For ``merged`` the grid also lists every registry record, so that the published
cells outside the config (the paper's 17 models beside a new one) enter; ``within`` keeps the
grid's names that the source table actually holds.

Model order and colour: ``models`` is the one order of every figure and table; a model keeps its
position (and so its colour, ``densebench.report.style``) across figures. A model with cells from
our runs in a table that also holds published cells is *marked* (``MARK`` after its name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from densebench.registry import SINGULAR

if TYPE_CHECKING:
    import pandas as pd

AXES: tuple[str, ...] = ("datasets", "models", "strategies")
COLUMN: Mapping[str, str] = SINGULAR
"""The tidy table's column of each axis: the axis' singular (densebench.registry)."""
NAMED_COLUMNS: tuple[str, ...] = (
    "dataset",
    "dataset_name",
    "category",
    "model",
    "model_name",
    "strategy",
    "strategy_name",
)
"""The columns naming a cell in a report table: each axis' key and display name, the category."""
MARK = "\u2020"
"""Appended to the display name of a model whose cells come from our runs in a merged table."""


@dataclass(frozen=True)
class Grid:
    """The names a report covers, in order, with display names, categories and model sizes."""

    datasets: Sequence[str]
    models: Sequence[str]
    strategies: Sequence[str]
    categories: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    params_m: Mapping[str, float] = field(default_factory=dict)
    marked: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grid:
        """A grid from its JSON form (the keys of this class; ``marked`` as a list)."""
        return cls(
            **{k: list(data[k]) for k in AXES},
            categories=data.get("categories", {}),
            names=data.get("names", {}),
            params_m={k: float(v) for k, v in data.get("params_m", {}).items()},
            marked=frozenset(data.get("marked", ())),
        )

    def name(self, axis: str, key: str) -> str:
        """Display name of ``key`` on ``axis`` (the key itself when it has none); a marked
        model's name ends in ``MARK``."""
        text = self.names.get(axis, {}).get(key, key)
        return f"{text}{MARK}" if axis == "models" and key in self.marked else text

    def within(self, table: pd.DataFrame) -> Grid:
        """The grid cut to the names the tidy ``table`` holds (order kept), its models marked
        when the table mixes our runs with published cells."""
        held = {axis: set(table[COLUMN[axis]].astype(str)) for axis in AXES}
        cut = {axis: [k for k in getattr(self, axis) if k in held[axis]] for axis in AXES}
        sources = set(table["source"].dropna().astype(str)) if "source" in table else set()
        marked: frozenset[str] = frozenset()
        if {"published", "reproduced"} <= sources:
            ours = table.loc[table["source"] == "reproduced", "model"].astype(str)
            marked = frozenset(ours)
        return replace(self, **cut, marked=marked)
