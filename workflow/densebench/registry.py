"""Declarative registries of the three axes: models, datasets and strategies.

Each registry is a YAML file with one record per name (config/models.yaml,
config/datasets.yaml, config/strategies.yaml). Keys starting with "_" hold shared anchors
and are not records. This module only needs PyYAML, so the Snakefile can import it cheaply.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

AXES = ("models", "datasets", "strategies")
"""The three axes of the benchmark grid (the order Registries.load takes their files)."""
SINGULAR: dict[str, str] = {"models": "model", "datasets": "dataset", "strategies": "strategy"}


class UnknownNameError(ValueError):
    """A config names a model, dataset or strategy that its registry does not hold."""


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file when it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"registry file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of name -> record, got {type(data).__name__}")
    return data


def records(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Drop the "_"-prefixed anchor keys, keeping only named records."""
    return {k: v for k, v in data.items() if not k.startswith("_")}


@dataclass(frozen=True)
class Registries:
    """The three loaded registries."""

    models: dict[str, dict[str, Any]]
    datasets: dict[str, dict[str, Any]]
    strategies: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, models: Path, datasets: Path, strategies: Path) -> Registries:
        """Load the three registry files."""
        return cls(
            models=records(load_yaml(models)),
            datasets=records(load_yaml(datasets)),
            strategies=records(load_yaml(strategies)),
        )

    def axis(self, name: str) -> dict[str, dict[str, Any]]:
        """Return the registry of one axis ("models", "datasets" or "strategies")."""
        if name not in AXES:
            raise ValueError(f"unknown axis {name!r}; valid: {', '.join(AXES)}")
        return getattr(self, name)

    def check_names(self, selection: Mapping[str, Iterable[str]]) -> None:
        """Raise UnknownNameError listing the valid names for every unknown selected name."""
        problems = []
        for axis, names in selection.items():
            known = self.axis(axis)
            for name in names:
                if name not in known:
                    problems.append(_unknown_message(axis, name, known))
        if problems:
            raise UnknownNameError("\n".join(problems))


def _unknown_message(axis: str, name: str, known: Mapping[str, Any]) -> str:
    """Explain one unknown name: the closest match and every valid name."""
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Unknown {SINGULAR[axis]} {name!r} in the config.{hint} "
        f"Valid {axis}: {', '.join(sorted(known))}. "
        f"Add a record to the {axis} registry to benchmark a new one."
    )


def strategy_problem(
    model: str, record: Mapping[str, Any], strategy: str, strategy_record: Mapping[str, Any]
) -> str | None:
    """Why a strategy cannot train a model (None if it can): a UNet (`family: unet`) trains
    every parameter from scratch, so only a plain `full` strategy applies to it."""
    if record.get("family") != "unet":
        return None
    extras = [key for key in ("depth", "block_units") if key in strategy_record]
    plain = strategy_record["encoder"] == "full" and strategy_record.get("decoder") == "standard"
    if plain and not extras:
        return None
    return (
        f"model {model} is a UNet trained from scratch (every parameter trains, no "
        f"pretrained encoder to freeze or adapt); strategy {strategy} (encoder "
        f"{strategy_record['encoder']}, decoder {strategy_record.get('decoder')}) does not "
        "apply to it: use strategy full"
    )
