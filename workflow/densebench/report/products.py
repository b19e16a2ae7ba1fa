"""The report's products, listed once: each figure kind with its builder, options, caption and
place in `snakemake --report`, and the report's tables of a source.

The workflow's plan (``densebench.plan``) takes the products of each results source from here,
the figure rule (workflow/rules/figures.smk, one rule over ``{kind}``) its report category and
labels, and the CLI (``densebench figure``) its kinds and builders. Adding a figure is one entry
in ``FIGURES`` (its builder ``(table, grid, **options) -> Figure``) and one caption block in
workflow/report/figure.rst. A figure drawn from a report table as well (``tables``: the rank
uncertainty's bootstrap, computed once by its table's rule) gets that table's CSV as an input.

Heat maps are drawn per strategy: the kind ``heatmap`` names its files ``heatmap_<strategy>``.
``render_figure`` draws and saves a figure; ``write_report_table`` writes a table kind.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from densebench.report.grid import Grid

CAPTION = "figure.rst"
"""The caption file of every figure (workflow/report/), one Jinja block per kind."""
PER_STRATEGY = "heatmap"
"""The kind drawn once per strategy (files ``heatmap_<strategy>``)."""


@dataclass(frozen=True)
class FigureProduct:
    """A figure the report draws from a source's tidy table."""

    builder: str
    """``module:function`` of its builder ``(table, grid, **options) -> Figure``."""
    category: str
    """Its category in `snakemake --report`."""
    label: str
    """Its ``figure`` label in `snakemake --report`."""
    subcategory: str | None = None
    sizes: bool = False
    """Whether it shows the models' parameter counts (the grid then carries ``params_m``)."""
    config_options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """CLI options taken from the config: (option, path of keys in the config)."""
    objects: bool = False
    """Whether it draws object metrics (only sources with our runs on datasets with instance
    labels have them)."""
    tables: tuple[str, ...] = ()
    """Report tables (``TABLE_KINDS``) it is drawn from beside the source's table: inputs
    ``tables/<kind>.csv`` of the figure rule, given to its builder as keyword ``<kind>``."""

    def build(self) -> Callable[..., Any]:
        """The builder function (imported on use: matplotlib is slow to import)."""
        module, name = self.builder.split(":")
        return getattr(importlib.import_module(module), name)

    def labels(self, name: str) -> dict[str, str]:
        """Its labels in `snakemake --report` for the file stem ``name``."""
        strategy = strategy_of(name)
        return {"figure": self.label, **({"strategy": strategy} if strategy else {})}

    def cli_options(self, config: Mapping[str, Any]) -> str:
        """Its config-derived CLI options (e.g. Figure 3's ``--metric``)."""
        parts = []
        for option, path in self.config_options:
            value: Any = config
            for key in path:
                value = value[key]
            parts.append(f"{option} {value}")
        return " ".join(parts)


FIGURES: dict[str, FigureProduct] = {
    "figure3": FigureProduct(
        "densebench.report.figures.boxes:build_figure3",
        "Figures",
        "Figure 3: per dataset and strategy",
        config_options=(("--metric", ("report", "metric")),),
    ),
    "figure4": FigureProduct(
        "densebench.report.figures.scaling:build_figure4",
        "Figures",
        "Figure 4: scaling",
        sizes=True,
    ),
    "heatmap": FigureProduct(
        "densebench.report.figures.heatmap:build_heatmap",
        "Figures",
        "heat map",
        subcategory="heat maps",
    ),
    "dataset_sota": FigureProduct(
        "densebench.report.figures.bars:build_dataset_sota", "Leaderboard", "best per dataset"
    ),
    "average_rank": FigureProduct(
        "densebench.report.figures.bars:build_average_rank", "Leaderboard", "average rank"
    ),
    "critical_difference": FigureProduct(
        "densebench.report.figures.cd_diagram:build_cd_diagram",
        "Statistical tests",
        "critical difference",
    ),
    "rank_uncertainty": FigureProduct(
        "densebench.report.figures.rank_intervals:build_rank_uncertainty",
        "Leaderboard",
        "rank uncertainty",
        tables=("rank_uncertainty",),
    ),
    "rank_shift": FigureProduct(
        "densebench.report.figures.rank_shift:build_rank_shift",
        "Object metrics",
        "pixel rank against object rank",
        objects=True,
    ),
}
FIGURE_KINDS: tuple[str, ...] = tuple(FIGURES)

TABLE_KINDS: tuple[str, ...] = (
    "dataset_sota",
    "average_rank",
    "strategy_comparison",
    "friedman",
    "rank_uncertainty",
    "model_cards",
    "dataset_cards",
)
"""The report's tables of every source written as CSV, Markdown and LaTeX (beside them: the
per-strategy tables of every source, and for sources with our runs the per-class tables, the
paired bootstrap per dataset and, with several training seeds, the seed spread; for the
reproduced source the compute used, ``COMPUTE_TABLE``)."""

COMPUTE_TABLE = "compute"
"""The reproduced source's table of the compute our runs used (``tables/compute.{csv,md}``):
the measured device-hours of their provenance per model and strategy beside the FLOP rule's
estimate, written by its own command (`densebench compute`; densebench.report.compute)."""
COMPUTE_FORMATS: tuple[str, ...] = ("csv", "md")


FOLDER_KINDS: tuple[str, ...] = ("per_strategy", "per_class", "objects")
"""Tables written as a folder, one file per (dataset, strategy)."""
CARD_KINDS: tuple[str, ...] = ("model_cards", "dataset_cards")
"""Tables drawn from registry records, not from a source's table."""
BOOTSTRAP_KINDS: tuple[str, ...] = ("rank_uncertainty",)
"""Tables of a bootstrap over a source's table and our runs' confusion files, written by their
own command (`densebench rank-uncertainty`: replicates, seed, files)."""
SOURCE_TABLE_KINDS: tuple[str, ...] = tuple(
    k for k in (*FOLDER_KINDS, *TABLE_KINDS) if k not in (*CARD_KINDS, *BOOTSTRAP_KINDS)
)
"""Tables drawn from a source's table (`densebench table <kind>`)."""


def strategy_of(name: str) -> str | None:
    """The strategy of a per-strategy figure's file stem (``heatmap_lora`` -> ``lora``)."""
    prefix = f"{PER_STRATEGY}_"
    return name.removeprefix(prefix) if name.startswith(prefix) else None


def figure_product(name: str) -> FigureProduct:
    """The product of a figure's file stem (a kind, or ``heatmap_<strategy>``)."""
    kind = PER_STRATEGY if strategy_of(name) else name
    if kind not in FIGURES:
        valid = [*(k for k in FIGURES if k != PER_STRATEGY), f"{PER_STRATEGY}_<strategy>"]
        raise ValueError(f"unknown figure {name!r}: one of {', '.join(valid)}")
    return FIGURES[kind]


def figure_names(strategies: Iterable[str], objects: bool = True) -> list[str]:
    """The file stems of a report's figures: every kind, the heat map once per strategy; the
    object-metric figures only with `objects`."""
    names = []
    for kind, product in FIGURES.items():
        if product.objects and not objects:
            continue
        if kind == PER_STRATEGY:
            names += [f"{PER_STRATEGY}_{s}" for s in strategies]
        else:
            names.append(kind)
    return names


def figure_kind_pattern(strategies: Iterable[str]) -> str:
    """Regex of every figure file stem over the given strategies (the rule's constraint)."""
    return "|".join(re.escape(n) for n in figure_names(sorted(strategies)))


def figure_tables(name: str, paths: Iterable[Path]) -> dict[str, pd.DataFrame]:
    """The report tables a figure is drawn from (``FigureProduct.tables``), read from their CSV
    (``tables/<kind>.csv``) and keyed by kind; ValueError for a table it is not drawn from."""
    import pandas as pd

    allowed = figure_product(name).tables
    out = {}
    for path in map(Path, paths):
        if path.stem not in allowed:
            raise ValueError(
                f"figure {name}: {path} is not a table it is drawn from (it reads "
                f"{', '.join(f'{k}.csv' for k in allowed) or 'none'})"
            )
        out[path.stem] = pd.read_csv(path)
    return out


def render_figure(
    name: str, table: pd.DataFrame, grid: Grid, png: Path, pdf: Path, **options: Any
) -> None:
    """Draw the figure ``name`` (a kind or ``heatmap_<strategy>``) of a source's table and
    save it as PNG and vector PDF (byte-identical for the same input)."""
    from densebench.report.figures import save_figure

    product = figure_product(name)
    strategy = strategy_of(name)
    if strategy:
        options = {**options, "strategy": strategy}
    save_figure(product.build()(table, grid, **options), png, pdf)


def write_report_table(
    kind: str,
    out: Path,
    table: pd.DataFrame | None = None,
    grid: Grid | None = None,
    records: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Path]:
    """Write the table ``kind`` (``TABLE_KINDS``, or the folders ``per_strategy``/``per_class``)
    of a source's table and grid (the cards: of registry ``records``) as CSV, Markdown and
    LaTeX; ``out`` is the file stem (a folder for the folder kinds); return the paths."""
    from densebench.report import object_tables, rank_uncertainty, ranking, stats, tables

    out = Path(out)
    if kind in CARD_KINDS:
        if records is None:
            raise ValueError(f"table {kind}: pass the registry records")
        return tables.write_cards(records, kind.removesuffix("_cards") + "s", out)
    writers: dict[str, Callable[..., list[Path]]] = {
        "dataset_sota": ranking.write_dataset_sota,
        "average_rank": ranking.write_average_rank,
        "strategy_comparison": tables.write_strategy_comparison,
        "friedman": lambda t, g, stem: stats.write_friedman(t, g, stem.parent),
        "rank_uncertainty": rank_uncertainty.write_rank_uncertainty,  # defaults: 1000, seed 42
        "per_strategy": tables.strategy_tables,
        "per_class": tables.class_tables,
        "objects": object_tables.object_tables,
    }
    if kind not in writers:
        valid = [*TABLE_KINDS, *FOLDER_KINDS]
        raise ValueError(f"unknown table {kind!r}: one of {', '.join(valid)}")
    if kind == "friedman" and out.name != "friedman":
        raise ValueError(f"table friedman: the stem must end in 'friedman', got {out}")
    if table is None or grid is None:
        raise ValueError(f"table {kind}: pass the source's table and grid")
    if kind in FOLDER_KINDS:
        out.mkdir(parents=True, exist_ok=True)  # a folder of tables (may stay empty)
    return writers[kind](table, grid, out)
