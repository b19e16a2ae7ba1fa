"""`densebench` commands of the report: results sources, tables, figures, comparisons."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.cli.args import (
    BOOTSTRAP,
    SOURCE,
    KeepGiven,
    arg,
    command,
    json_arg,
    json_option,
    opt_path,
    path,
    paths,
)
from densebench.report import products

if TYPE_CHECKING:
    pass

# ---- the kinds: from the product table (densebench.report.products) --------------------------

HEATMAP = products.PER_STRATEGY
CARD_KINDS = tuple(f"{k.removesuffix('_cards')}s" for k in products.CARD_KINDS)
"""`densebench cards <axis>`: models, datasets."""


def figure_kind(text: str) -> str:
    """A figure kind of the product table, `heatmap_<strategy>` for a heat map (or `heatmap`)."""
    try:
        products.figure_product(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def figure_name(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The figure a `densebench figure` command line asks for (a product table's file stem,
    `heatmap --strategy S` read as `heatmap_S`), and its options."""
    name = f"{HEATMAP}_{args.strategy}" if args.kind == HEATMAP and args.strategy else args.kind
    return name, {"metric": args.metric} if args.metric is not None else {}


TABLE_OUT_HELP = "a folder (per_strategy, per_class) or a file stem (.csv/.md/.tex are added)"


def report_inputs(args: argparse.Namespace):
    """The source table and the grid cut to it (every report product starts here)."""
    from densebench.report.grid import Grid
    from densebench.report.sources import read_tidy

    table = read_tidy(args.table)
    return table, Grid.from_json(args.grid).within(table)


@command(
    "fetch-published",
    arg("--stem", required=True),
    arg("--sha256", required=True),
    path("--out"),
    arg("--url", default=None, help="default: the pinned commit's Data/<stem>.json"),
)
def cmd_fetch_published(args: argparse.Namespace) -> None:
    """Download one published results file at the pinned commit, sha256-verified."""
    from densebench.report.published import fetch_published

    fetch_published(args.stem, args.sha256, args.out, url=args.url)


@command(
    "source-table",
    arg("--source", choices=("reproduced", "published", "merged"), required=True),
    path("--out"),
    opt_path("--reproduced"),
    arg("--published", type=json_arg, default=None, help="{strategy: {path, sha256}}"),
)
def cmd_source_table(args: argparse.Namespace) -> None:
    """The tidy table of one results source (reproduced, published or merged)."""
    from densebench.atomic import write_table
    from densebench.report.sources import source_table

    write_table(source_table(args.source, args.reproduced, args.published), args.out)


@command(
    "export-published",
    SOURCE,
    arg("--strategy", required=True, help="the strategy whose cells the file holds"),
    path("--out", help="Data/<stem>.json, <stem> the strategy's published name"),
)
def cmd_export_published(args: argparse.Namespace) -> None:
    """One strategy of a source's table as the authors' results site stores it."""
    from densebench.report.grid import Grid
    from densebench.report.published_export import write_published_file
    from densebench.report.sources import read_tidy

    table = read_tidy(args.table)
    write_published_file(table, args.strategy, args.out, Grid.from_json(args.grid))


@command(
    "table",
    arg("kind", choices=products.SOURCE_TABLE_KINDS),
    SOURCE,
    path("--out", help=TABLE_OUT_HELP),
)
def cmd_table(args: argparse.Namespace) -> None:
    """One kind of report table of a source's table (CSV, Markdown and LaTeX)."""
    table, grid = report_inputs(args)
    for written in products.write_report_table(args.kind, args.out, table, grid):
        print(f"wrote {written}", file=sys.stderr)


@command("summaries", SOURCE, path("--out-dir"))
def cmd_summaries(args: argparse.Namespace) -> None:
    """Best model per dataset and average-rank leaderboard of a source's table."""
    from densebench.report.ranking import write_summaries

    table, grid = report_inputs(args)
    for written in write_summaries(table, grid, args.out_dir):
        print(f"wrote {written}", file=sys.stderr)


@command(
    "cards",
    arg("kind", nargs="?", choices=CARD_KINDS, action=KeepGiven, default=None),
    arg("--kind", choices=CARD_KINDS, dest="kind", help=argparse.SUPPRESS),  # deprecated alias
    json_option("--records"),
    path("--out", help="file stem (.csv/.md/.tex are added)"),
)
def cmd_cards(args: argparse.Namespace) -> None:
    """Model or dataset cards (the paper's Tables A1/B1) from registry records."""
    from densebench.report.tables import write_cards

    if args.kind is None:
        raise SystemExit("densebench cards: error: the kind is required: models or datasets")
    for written in write_cards(args.records, args.kind, args.out):
        print(f"wrote {written}", file=sys.stderr)


@command(
    "figure",
    arg("kind", type=figure_kind, metavar=f"{{{','.join(products.figure_names(['<strategy>']))}}}"),
    SOURCE,
    path("--png"),
    path("--pdf"),
    arg("--strategy", default=None, help=argparse.SUPPRESS),  # deprecated: heatmap_<strategy>
    arg("--metric", default=None, help="Figure 3's metric (default Mean_Dice)"),
    arg("--tables", type=Path, nargs="*", default=[], help="report tables it is drawn from"),
)
def cmd_figure(args: argparse.Namespace) -> None:
    """One report figure of a source's table, as PNG and PDF."""
    name, options = figure_name(args)
    table, grid = report_inputs(args)
    options.update(products.figure_tables(name, args.tables))
    products.render_figure(name, table, grid, args.png, args.pdf, **options)


@command(
    "rank-uncertainty",
    SOURCE,
    BOOTSTRAP,
    arg("--scheme", choices=("auto", "image", "dataset"), default="auto"),
    path("--out", help="file stem (.csv/.md/.tex are added)"),
    arg("confusions", type=Path, nargs="*", help="our runs' confusion.npz (image-level)"),
)
def cmd_rank_uncertainty(args: argparse.Namespace) -> None:
    """Bootstrap intervals of the average ranks and P(first) of a source's leaderboard."""
    from densebench.report.rank_uncertainty import confusion_map, write_rank_uncertainty

    table, grid = report_inputs(args)
    options = {
        "confusions": confusion_map(args.confusions),
        "scheme": args.scheme,
        "definitions": args.definitions,
        "exclude_background": args.exclude_background,
    }
    paths = write_rank_uncertainty(table, grid, args.out, args.replicates, args.seed, **options)
    for written in paths:
        print(f"wrote {written}", file=sys.stderr)


@command(
    "paired-bootstrap",
    arg("--dataset", required=True),
    json_option("--grid"),
    BOOTSTRAP,
    path("--csv"),
    path("--md"),
    paths("confusions"),
)
def cmd_paired_bootstrap(args: argparse.Namespace) -> None:
    """Paired bootstrap differences of a dataset's runs on the same test images."""
    from densebench.report.grid import Grid
    from densebench.report.paired import paired_bootstrap_files, write_paired

    grid = Grid.from_json(args.grid)
    options = {"definitions": args.definitions, "exclude_background": args.exclude_background}
    frame = paired_bootstrap_files(
        args.confusions, args.replicates, args.seed, **options, grid=grid
    )
    if set(frame["dataset"]) - {args.dataset}:
        raise ValueError(f"paired-bootstrap --dataset {args.dataset}: runs of other datasets given")
    write_paired(frame, grid, args.csv, args.md)


@command(
    "reproduction",
    path("--reproduced"),
    json_option("--published"),
    json_option("--grid"),
    path("--out", help="file stem (.md/.html/.csv are added)"),
)
def cmd_reproduction(args: argparse.Namespace) -> None:
    """The reproduction report: our runs against the published results, cell by cell."""
    from densebench.report.grid import Grid
    from densebench.report.reproduction import write_reproduction
    from densebench.report.sources import published_table, read_tidy

    ours, paper = read_tidy(args.reproduced), published_table(args.published)
    stem = args.out
    outputs = [stem.with_name(f"{stem.name}.{ext}") for ext in ("md", "html", "csv")]
    for written in write_reproduction(ours, paper, Grid.from_json(args.grid), *outputs):
        print(f"wrote {written}", file=sys.stderr)


@command(
    "compute",
    arg("--estimate", type=json_arg, default=[], help="[{model, strategy, gpu_h, shared_gpu_h}]"),
    path("--out", help="file stem (.csv/.md are added)"),
    paths("provenance", help="our runs' provenance.json"),
)
def cmd_compute(args: argparse.Namespace) -> None:
    """The measured device-hours of our runs per model and strategy, beside the estimate."""
    from densebench.report.compute import compute_used, read_provenance, write_compute

    table = compute_used(read_provenance(args.provenance), args.estimate)
    for written in write_compute(table, args.out):
        print(f"wrote {written}", file=sys.stderr)
