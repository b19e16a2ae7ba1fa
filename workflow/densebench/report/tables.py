"""The report's tables, each as CSV (registry keys beside display names), Markdown and LaTeX.

Everything reads the tidy table of one results source (``densebench.report.aggregate``) and the
source's ``Grid`` (order and names). The value shown is ``boot_mean``, the published "mean"
(mean of the bootstrap replicates), with its 95% percentile interval as ``mean [lower, upper]``.
In every column of models the best value is bold and the second underlined, ranked on the
unrounded means (every metric here is higher-is-better; equal best values are all bold).

- ``strategy_tables``: per (dataset, strategy) the grid's models x the 8 headline ``METRICS``,
  rows by ``Mean_Dice`` descending (``per_strategy/<dataset>/<strategy>.*``).
- ``class_tables``: per (dataset, strategy) models x classes of the per-class Dice (the CSV
  carries every ``CLASS_METRICS``), for sources with per-class rows (our runs; the published
  files have none) (``per_class/<dataset>/<strategy>.*``).
- ``strategy_comparison``: per strategy the mean ``Mean_Dice`` over its cells, overall and per
  dataset category, and how often it is the best strategy of a (dataset, model) pair.
- ``model_cards`` / ``dataset_cards``: the paper's Tables A1 / B1 from the registry records.

A model whose cells rest on fewer than 10 test images (``densebench.report.reliability``) has
its name marked with a double dagger and the table's note (its LaTeX caption) a footnote
"‡ unreliable (n = 3 test images)"; the CSVs carry ``n_images`` and ``unreliable`` per model.

The Markdown/LaTeX helpers they share are ``densebench.report.formats``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import headline_rows
from densebench.report.formats import (
    ci_cell,
    emphasis,
    latex,
    latex_escape,
    markdown,
    md_mark,
    tex_mark,
    write_formats,
    write_text_table,
)
from densebench.report.grid import Grid
from densebench.report.ranking import CATEGORIES, RANK_METRIC
from densebench.report.reliability import is_unreliable, marked, with_note

if TYPE_CHECKING:
    import pandas as pd

CLASS_METRIC = "Dice"
"""The per-class metric the Markdown and LaTeX per-class tables show."""


def _marked_cells(
    wide: pd.DataFrame,
    columns: Sequence[str],
    lowest_best: Collection[str] = (),
    digits: Mapping[str, int] | None = None,
) -> tuple[list[list[str]], list[list[str]]]:
    """Markdown and LaTeX cells of ``columns`` (mean with ``_ci_lower``/``_ci_upper``) with the
    best of each column bold and the second underlined: the highest, or the lowest for the
    columns in ``lowest_best``; 3 digits unless ``digits`` says otherwise per column."""
    md_rows = [[] for _ in range(len(wide))]
    tex_rows = [[] for _ in range(len(wide))]
    for column in columns:
        sign = -1.0 if column in lowest_best else 1.0
        marks = emphasis([sign * float(v) for v in wide[column]])
        lower, upper = wide[f"{column}_ci_lower"], wide[f"{column}_ci_upper"]
        bounds = zip(wide[column], lower, upper, strict=True)
        places = (digits or {}).get(column, 3)
        for i, (mark, values) in enumerate(zip(marks, bounds, strict=True)):
            text = ci_cell(*(float(v) for v in values), digits=places)
            md_rows[i].append(md_mark(text, mark))
            tex_rows[i].append(tex_mark(text, mark))
    return md_rows, tex_rows


def wide_table(
    part: pd.DataFrame,
    grid: Grid,
    metrics: Sequence[str] = METRICS,
    sort_by: str = RANK_METRIC,
) -> pd.DataFrame:
    """Models x (metric, metric_ci_lower, metric_ci_upper) of one (dataset, strategy), rows by
    ``sort_by`` descending (ties and missing values in grid order)."""
    import pandas as pd

    order = {m: i for i, m in enumerate(grid.models)}
    models = sorted(dict.fromkeys(part["model"]), key=lambda m: (order.get(m, len(order)), m))
    wide = pd.DataFrame({"model": models}, index=models)
    columns = []
    for stat, suffix in (("boot_mean", ""), ("ci_lower", "_ci_lower"), ("ci_upper", "_ci_upper")):
        pivot = part.pivot(index="model", columns="metric", values=stat)
        for name in metrics:
            wide[f"{name}{suffix}"] = (
                pivot[name].reindex(models).astype("float64") if name in pivot else math.nan
            )
    for name in metrics:
        columns += [name, f"{name}_ci_lower", f"{name}_ci_upper"]
    wide = wide.sort_values(sort_by, ascending=False, kind="stable", na_position="last")
    wide.insert(1, "model_name", [grid.name("models", m) for m in wide["model"]])
    counts = _model_images(part)
    wide["n_images"] = pd.array([counts.get(m) for m in wide["model"]], dtype="Int64")
    wide["unreliable"] = [is_unreliable(n) for n in wide["n_images"]]
    keep = ["model", "model_name", *columns, "n_images", "unreliable"]
    return wide.loc[:, keep].reset_index(drop=True)


def _model_images(rows: pd.DataFrame) -> dict[str, int]:
    """Per model the test images its rows rest on (models without a count are left out)."""
    if "n_images" not in rows:
        return {}
    counts = rows.loc[rows["n_images"].notna(), ["model", "n_images"]]
    return {str(m): int(n) for m, n in zip(counts["model"], counts["n_images"], strict=True)}


def grid_cells(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Rows of ``table`` inside the grid's datasets, models and strategies."""
    return table[
        table["dataset"].isin(grid.datasets)
        & table["model"].isin(grid.models)
        & table["strategy"].isin(grid.strategies)
    ]


def _title(grid: Grid, dataset: str, strategy: str) -> str:
    """``<dataset> — <strategy>`` in display names."""
    return f"{grid.name('datasets', dataset)} — {grid.name('strategies', strategy)}"


def grid_parts(rows: pd.DataFrame, grid: Grid) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(dataset, strategy, rows) of every grid cell holding rows, in grid order."""
    for dataset in grid.datasets:
        for strategy in grid.strategies:
            part = rows[(rows["dataset"] == dataset) & (rows["strategy"] == strategy)]
            if not part.empty:
                yield dataset, strategy, part


def _model_table(
    wide: pd.DataFrame,
    columns: Sequence[str],
    names: Sequence[str],
    header: Sequence[str],
    caption: tuple[str, str, str],
    **cells: Any,
) -> tuple[str, str]:
    """Markdown and LaTeX of a models x ``columns`` table (marked cells, ``cells``: the options
    of ``_marked_cells``; ``caption``: title, note, label)."""
    title, note, label = caption
    md_cells, tex_cells = _marked_cells(wide, columns, **cells)
    md = markdown(header, [[n, *c] for n, c in zip(names, md_cells, strict=True)], title, note)
    tex_rows = [[latex_escape(n), *c] for n, c in zip(names, tex_cells, strict=True)]
    return md, latex(header, tex_rows, f"{title}. {note}", label)


def strategy_tables(table: pd.DataFrame, grid: Grid, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<dataset>/<strategy>.{csv,md,tex}`` per (dataset, strategy) cell of the
    grid holding rows; return the paths."""
    rows = grid_cells(headline_rows(table), grid)
    written: list[Path] = []
    note = (
        "Values: mean of the bootstrap replicates [2.5th, 97.5th percentile]; rows by "
        f"{RANK_METRIC} (descending); per column the best in bold, the second underlined."
    )
    for dataset, strategy, part in grid_parts(rows, grid):
        wide = wide_table(part, grid)
        written += write_cell_table(wide, grid, (dataset, strategy), note, METRICS, out_dir)
    return written


def write_cell_table(
    wide: pd.DataFrame,
    grid: Grid,
    cell: tuple[str, str],
    note: str,
    metrics: Sequence[str],
    out_dir: Path,
    label: str = "tab:",
    **cells: Any,
) -> list[Path]:
    """Write one (dataset, strategy) cell's ``wide_table`` as ``<out_dir>/<dataset>/<strategy>``
    CSV, Markdown and LaTeX (LaTeX label ``<label><dataset>-<strategy>``): models marked and
    the note extended where a test split is small; ``cells``: the options of ``_marked_cells``."""
    dataset, strategy = cell
    tag = f"{label}{dataset}-{strategy}".replace("_", "-")
    caption = (_title(grid, dataset, strategy), with_note(note, wide["n_images"]), tag)
    names = [marked(t, n) for t, n in zip(wide["model_name"], wide["n_images"], strict=True)]
    md, tex = _model_table(wide, metrics, names, ["Model", *metrics], caption, **cells)
    return write_formats(wide, md, tex, Path(out_dir) / dataset / strategy)


def class_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-class rows of a tidy table (a class index set)."""
    return table[table["class"].notna()] if "class" in table else table.iloc[0:0]


def class_table(part: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Long per-class table of one (dataset, strategy): model, class, metric and its CI."""
    import pandas as pd

    order = {m: i for i, m in enumerate(grid.models)}
    out = part.assign(
        model_name=[grid.name("models", m) for m in part["model"]],
        _m=part["model"].map(order),
        **{"class": part["class"].astype("int64")},
    )
    counts = _model_images(part)
    out["n_images"] = pd.array([counts.get(m) for m in out["model"]], dtype="Int64")
    out["unreliable"] = [is_unreliable(n) for n in out["n_images"]]
    columns = ["model", "model_name", "class", "class_name", "metric"]
    columns += ["point", "boot_mean", "ci_lower", "ci_upper", "n_images", "unreliable"]
    out = out.sort_values(["_m", "class", "metric"], kind="stable")
    return out.loc[:, columns].reset_index(drop=True)


def class_tables(table: pd.DataFrame, grid: Grid, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<dataset>/<strategy>.{csv,md,tex}``: models x classes (Dice) per cell
    of the grid with per-class rows; return the paths (none for a table without them)."""
    rows = grid_cells(class_rows(table), grid)
    written: list[Path] = []
    note = (
        f"Per-class {CLASS_METRIC}: mean of the bootstrap replicates [2.5th, 97.5th "
        "percentile]; per class the best in bold, the second underlined."
    )
    for dataset, strategy, part in grid_parts(rows, grid):
        long = class_table(part, grid)
        dice = long[long["metric"] == CLASS_METRIC]
        classes = list(dict.fromkeys(zip(dice["class"], dice["class_name"], strict=True)))
        models = list(dict.fromkeys(dice["model"]))
        shown = _class_wide(dice, models, [c for c, _ in classes])
        counts = _model_images(dice)
        names = [marked(grid.name("models", m), counts.get(m)) for m in models]
        header = ["Model", *(str(name) for _, name in classes)]
        title = f"{_title(grid, dataset, strategy)}: per-class {CLASS_METRIC}"
        label = f"tab:{dataset}-{strategy}-classes".replace("_", "-")
        columns = [str(c) for c, _ in classes]
        caption = (title, with_note(note, [counts.get(m) for m in models]), label)
        md, tex = _model_table(shown, columns, names, header, caption)
        written += write_formats(long, md, tex, Path(out_dir) / dataset / strategy)
    return written


def _class_wide(dice: pd.DataFrame, models: list[str], classes: list[int]) -> pd.DataFrame:
    """Models x classes with ``<c>``, ``<c>_ci_lower``, ``<c>_ci_upper`` columns (as strings)."""
    import pandas as pd

    wide = pd.DataFrame(index=models)
    for stat, suffix in (("boot_mean", ""), ("ci_lower", "_ci_lower"), ("ci_upper", "_ci_upper")):
        pivot = dice.pivot(index="model", columns="class", values=stat).reindex(models)
        for c in classes:
            wide[f"{c}{suffix}"] = pivot[c].astype("float64") if c in pivot else math.nan
    return wide.reset_index(drop=True)


def strategy_comparison(table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Per strategy: mean ``Mean_Dice`` overall and per category, the number of cells, and how
    often it is the best strategy of a (dataset, model) pair (strict >, first in grid order)."""
    import pandas as pd

    rows = grid_cells(headline_rows(table), grid)
    rows = rows[(rows["metric"] == RANK_METRIC) & rows["boot_mean"].notna()]
    rows = rows.assign(category=rows["dataset"].map(grid.categories))
    wins = dict.fromkeys(grid.strategies, 0)
    pairs = 0
    for (_, _), part in rows.groupby(["dataset", "model"], sort=False):
        by_strategy = dict(zip(part["strategy"], part["boot_mean"], strict=True))
        best = None
        for strategy in grid.strategies:
            value = by_strategy.get(strategy)
            if value is not None and (best is None or value > by_strategy[best]):
                best = strategy
        if best is not None:
            wins[best] += 1
            pairs += 1
    out = []
    for strategy in grid.strategies:
        part = rows[rows["strategy"] == strategy]
        record: dict[str, Any] = {
            "strategy": strategy,
            "strategy_name": grid.name("strategies", strategy),
            "cells": len(part),
            "overall": float(part["boot_mean"].mean()) if len(part) else math.nan,
        }
        for category in CATEGORIES:
            values = part.loc[part["category"] == category, "boot_mean"]
            record[category] = float(values.mean()) if len(values) else math.nan
        record["best_count"] = wins[strategy]
        record["best_share"] = wins[strategy] / pairs if pairs else math.nan
        out.append(record)
    return pd.DataFrame(out)


def write_strategy_comparison(table: pd.DataFrame, grid: Grid, stem: Path) -> list[Path]:
    """Write the strategy comparison as CSV, Markdown and LaTeX (best per column marked)."""
    frame = strategy_comparison(table, grid)
    columns = ["overall", *CATEGORIES]
    header = ["Strategy", "Overall", *(c.capitalize() for c in CATEGORIES), "Best (count)"]
    marks = {c: emphasis([float(v) for v in frame[c]]) for c in [*columns, "best_count"]}
    md_rows, tex_rows = [], []
    for i, r in enumerate(frame.to_dict("records")):
        cells = [("n/a" if math.isnan(r[c]) else f"{r[c]:.4f}", marks[c][i]) for c in columns]
        count = f"{r['best_count']} ({r['best_share']:.0%})" if r["cells"] else "0"
        cells.append((count, marks["best_count"][i]))
        md_rows.append([r["strategy_name"], *(md_mark(t, m) for t, m in cells)])
        tex_cells = [tex_mark(latex_escape(t), m) for t, m in cells]
        tex_rows.append([latex_escape(r["strategy_name"]), *tex_cells])
    note = (
        f"Mean {RANK_METRIC} over each strategy's (dataset, model) cells, overall and per "
        "dataset category; Best: how often the strategy is the best of a (dataset, model) pair."
    )
    title = "Strategy comparison"
    md = markdown(header, md_rows, title, note)
    tex = latex(header, tex_rows, f"{title}. {note}", "tab:strategy-comparison")
    return write_formats(frame, md, tex, stem)


MODEL_CARD: tuple[tuple[str, str], ...] = (
    ("display_name", "Model"),
    ("arch", "Architecture"),
    ("params_m", "Parameters (M)"),
    ("patch_size", "Patch"),
    ("embed_dim", "Embedding"),
    ("num_prefix_tokens", "Prefix tokens"),
    ("hf_repo", "Weights"),
    ("licence", "Licence"),
)
DATASET_CARD: tuple[tuple[str, str], ...] = (
    ("display_name", "Dataset"),
    ("category", "Category"),
    ("organ", "Organ"),
    ("num_classes", "Classes"),
    ("num_images", "Images"),
    ("mpp", "MPP"),
    ("access", "Access"),
    ("licence", "Licence"),
)


def card_fields(axis: str) -> list[str]:
    """The registry fields a card of ``axis`` ("models"/"datasets") shows (what re-renders it)."""
    fields = MODEL_CARD if axis == "models" else DATASET_CARD
    return [("classes" if f == "num_classes" else f) for f, _ in fields]


def _card_value(record: Mapping[str, Any], field: str) -> Any:
    """A card field of a registry record (``num_classes`` counts its classes)."""
    if field == "num_classes":
        return len(record.get("classes", []))
    value = record.get(field, "")
    return "" if value is None else value


def cards(records: Mapping[str, Mapping[str, Any]], fields: Sequence[tuple[str, str]]):
    """One row per record (registry key first) with the card's fields."""
    import pandas as pd

    rows = [
        {"key": key, **{f: _card_value(rec, f) for f, _ in fields}} for key, rec in records.items()
    ]
    return pd.DataFrame(rows, columns=["key", *(f for f, _ in fields)])


def write_cards(records: Mapping[str, Mapping[str, Any]], kind: str, stem: Path) -> list[Path]:
    """Write the model (``kind="models"``, Table A1) or dataset (Table B1) cards."""
    fields = MODEL_CARD if kind == "models" else DATASET_CARD
    frame = cards(records, fields)
    header = [label for _, label in fields]
    rows = [[str(r[f]) for f, _ in fields] for r in frame.to_dict("records")]
    title = "Model cards (Table A1)" if kind == "models" else "Dataset cards (Table B1)"
    note = "From the registry records (config/models.yaml, config/datasets.yaml)."
    return write_text_table(frame, header, rows, title, note, f"tab:{kind}-cards", stem)
