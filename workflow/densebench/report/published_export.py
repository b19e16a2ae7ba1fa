"""A results source written as the published files: ``Data/<stem>.json`` per strategy, exactly
as the authors' results site stores them, so that site and the dashboards reading those files
show reproduced or merged results unchanged.

The format, byte for byte that of the five files at ``PUBLISHED_COMMIT``: dataset -> model ->
metric -> {"mean", "ci_lower", "ci_upper"}, written by ``json.dumps(..., indent=2)`` (two-space
indent, ", " and ": " separators, ASCII with ``\\u`` escapes) with no newline at the end; numbers
as Python's shortest round-trip ``repr`` (``0.2448211915344``, every digit the table holds);
datasets in code-point order of their names (upper case first: BCSS ... WSSS4LUAD, cpm15, cpm17,
kumar); a dataset's models in code-point order of ``<model>_<stem>``, the authors' run names
(which puts conch_v1_5 before conch_v1, as the published files do); the 8 headline ``METRICS``
in their order. ``mean`` is the table's ``boot_mean`` (the published "mean" is the mean of the
bootstrap replicates). JSON has no NaN: a missing value is written as ``null`` (the published
files have none; the importer reads it back as NaN). A cell must hold all 8 metrics, as the
importer requires.

Names: the published files name datasets and models by our registry keys
(``PUBLISHED_DATASETS``, ``PUBLISHED_MODELS``), which the export keeps; any other dataset or
model (a new one, the demo's) is written under its display name (the grid's, from the registry),
since the site shows a name it does not know as written. Two names written alike are an error.
The file stem of a strategy is its record's ``published`` (config/strategies.yaml: cnn_adapter ->
cnn.json). Round trip: importing the five published files into the tidy table and exporting it
gives the five files back, byte for byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.atomic import write_text
from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import headline_rows
from densebench.report.grid import Grid
from densebench.report.published import PUBLISHED_DATASETS, PUBLISHED_MODELS

if TYPE_CHECKING:
    import pandas as pd

STATS: Mapping[str, str] = {"mean": "boot_mean", "ci_lower": "ci_lower", "ci_upper": "ci_upper"}
"""The statistics of a metric in the published files, and the tidy column each is taken from."""
PUBLISHED_NAMES: Mapping[str, frozenset[str]] = {
    "datasets": frozenset(PUBLISHED_DATASETS),
    "models": frozenset(PUBLISHED_MODELS),
}
Document = dict[str, dict[str, dict[str, dict[str, float | None]]]]
"""A published file's content: dataset -> model -> metric -> {mean, ci_lower, ci_upper}."""


def exported_name(axis: str, key: str, grid: Grid) -> str:
    """The name of a dataset or model (``axis``) in the published files: its key where the
    published files use it, else its display name (the key when the grid has none)."""
    if key in PUBLISHED_NAMES[axis]:
        return key
    return str(grid.names.get(axis, {}).get(key, key))


def exported_names(axis: str, keys: Iterable[str], grid: Grid) -> dict[str, str]:
    """``exported_name`` of each key; ValueError when two keys would be written alike."""
    names: dict[str, str] = {}
    owner: dict[str, str] = {}
    for key in dict.fromkeys(keys):
        name = exported_name(axis, key, grid)
        if name in owner:
            raise ValueError(
                f"{axis} {owner[name]!r} and {key!r} would both be written as {name!r} in the "
                f"published files; give one a distinct display_name in config/{axis}.yaml"
            )
        names[key], owner[name] = name, key
    return names


def _number(value: Any) -> float | None:
    """A statistic as a JSON number: the float, None (null) when missing or not finite."""
    number = float(value)
    return number if math.isfinite(number) else None


def _cells(rows: pd.DataFrame) -> dict[tuple[str, str], dict[str, dict[str, float | None]]]:
    """(dataset, model) -> metric -> the published statistics of headline ``rows``."""
    cells: dict[tuple[str, str], dict[str, dict[str, float | None]]] = {}
    for rec in rows.to_dict("records"):
        stats = {name: _number(rec[column]) for name, column in STATS.items()}
        cells.setdefault((str(rec["dataset"]), str(rec["model"])), {})[str(rec["metric"])] = stats
    return cells


def published_document(table: pd.DataFrame, strategy: str, stem: str, grid: Grid) -> Document:
    """The content of ``Data/<stem>.json`` for ``strategy``: every headline cell of the tidy
    ``table`` under that strategy, named and ordered as the published files (module doc)."""
    rows = headline_rows(table)
    cells = _cells(rows.loc[rows["strategy"].astype(str) == strategy])
    datasets = exported_names("datasets", (d for d, _ in cells), grid)
    models = exported_names("models", (m for _, m in cells), grid)
    document: Document = {}
    for dataset in sorted(datasets, key=datasets.__getitem__):
        held = [m for d, m in cells if d == dataset]
        entry = document.setdefault(datasets[dataset], {})
        for model in sorted(held, key=lambda m: f"{models[m]}_{stem}"):
            metrics = cells[(dataset, model)]
            missing = [name for name in METRICS if name not in metrics]
            if missing:
                raise ValueError(
                    f"cell {dataset}/{model}/{strategy} lacks metric(s) {missing}: a published "
                    "file holds all 8 per cell; rescore that run (rule score) and rerun"
                )
            entry[models[model]] = {name: metrics[name] for name in METRICS}
    return document


def published_text(document: Document) -> str:
    """A published file's text: ``json.dumps`` with a two-space indent, no final newline."""
    return json.dumps(document, indent=2, allow_nan=False)


def write_published_file(table: pd.DataFrame, strategy: str, out: Path, grid: Grid) -> Path:
    """Write ``strategy``'s cells of ``table`` as the published file ``out`` (its stem is the
    published stem, e.g. ``Data/cnn.json``) atomically; return the path."""
    out = Path(out)
    write_text(published_text(published_document(table, strategy, out.stem, grid)), out)
    return out
