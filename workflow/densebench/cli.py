"""`densebench`: the command line every Snakemake rule calls.

Each subcommand is a thin adapter from arguments to one package function; heavy libraries
(torch, timm, peft, matplotlib) are imported only by the subcommands that use them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.registry import AXES

if TYPE_CHECKING:
    from densebench.spec import RunSpec


def json_arg(text: str) -> Any:
    """Parse a JSON argument, or read it from a file when given as @path."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    return json.loads(text)


def spec_arg(text: str) -> RunSpec:
    """Parse a run spec (`densebench.spec.RunSpec` JSON), or read it from a file as @path."""
    from densebench.spec import RunSpec

    try:
        return RunSpec.from_dict(json_arg(text))
    except ValueError as error:  # argparse would print only the (long) value
        raise argparse.ArgumentTypeError(f"not a run spec: {error}") from error


def cmd_synthesize(args: argparse.Namespace) -> None:
    """Generate a synthetic dataset's raw files."""
    from densebench.data.synthetic import write_synthetic_raw

    write_synthetic_raw(args.card, args.out)


def cmd_download(args: argparse.Namespace) -> None:
    """Download a dataset's raw files listed in its card (sha256-verified, resumable)."""
    from densebench.data.download import fetch_sources

    fetch_sources(args.dataset, args.card, args.out)


def cmd_manual_check(args: argparse.Namespace) -> None:
    """Fail with instructions unless a registration-only dataset's files were dropped."""
    from densebench.data.download import check_manual_drop

    check_manual_drop(args.dataset, args.card, args.raw)


def cmd_unpack(args: argparse.Namespace) -> None:
    """Verify a dataset's raw files and unpack them for its converter."""
    from densebench.data.download import unpack_sources

    unpack_sources(args.dataset, args.card, args.raw, args.out)


def cmd_split_list(args: argparse.Namespace) -> None:
    """Download the authors' published split list of a dataset at its pinned commit."""
    from densebench.data.download import fetch_split_list

    print(fetch_split_list(args.dataset, args.card, args.out))


def cmd_convert(args: argparse.Namespace) -> None:
    """Convert raw files into a validated zarr store."""
    from densebench.data.converters import get_converter
    from densebench.data.store import write_store

    converter = args.card.get("converter")
    if not converter:
        raise SystemExit(
            f"dataset {args.dataset}: no converter is registered in its card yet; "
            "only datasets with a `converter` can be converted"
        )
    convert = get_converter(converter)
    split_list = json.loads(args.split_list.read_text()) if args.split_list else None
    write_store(
        convert(args.raw, args.card),
        args.card,
        args.dataset,
        args.out,
        split_policy=args.split_policy,
        seed=args.seed,
        fractions=tuple(args.fractions),
        split_list=split_list,
    )


def cmd_weights(args: argparse.Namespace) -> None:
    """Download a model's weights snapshot (token from HF_TOKEN, never printed)."""
    from densebench.models.weights import fetch_weights

    snapshot = fetch_weights(args.model, args.record, args.out)
    print(
        f"{args.model}: {snapshot['repo']} at {snapshot['commit']}, {len(snapshot['files'])} files"
    )


def cmd_pretrain(args: argparse.Namespace) -> None:
    """Pretrain a demo model (`weights: pretrain`) into a local weights snapshot."""
    from densebench.models.pretrain import write_pretrained

    manifest = write_pretrained(args.model, args.record, args.out)
    print(
        f"{args.model}: pretrained on {manifest['identity']['pretrain']['images']} images per "
        f"generator, loss {manifest['first_loss']:.3f} -> {manifest['final_loss']:.3f}, "
        f"{manifest['seconds']} s"
    )


def cmd_preflight(args: argparse.Namespace) -> None:
    """Check hub access to models (--models records, else the --config grid), no download."""
    from densebench.config import load_config, registry_path
    from densebench.models.preflight import preflight, summary, write_preflight
    from densebench.registry import Registries

    models = args.models
    if models is None:
        config = load_config(args.config)
        registries = Registries.load(*(registry_path(config, axis) for axis in AXES))
        models = {name: registries.models[name] for name in config["models"]}
    rows = preflight(models, timeout=args.timeout)
    write_preflight(rows, args.out)
    print(summary(rows))


def prepare_model_job(model: str | None, weights: Path | None) -> None:
    """Before any model library is imported: no network inside a job, and the model's weights
    snapshot complete (when the job has one)."""
    from densebench.models.weights import check_snapshot, enforce_offline

    enforce_offline()
    if weights is not None and model is not None:
        check_snapshot(model, weights)


def cmd_train(args: argparse.Namespace) -> None:
    """Train one run into --out-dir (best.pt, train_log.csv, provenance.json)."""
    prepare_model_job(args.spec.model, args.weights)
    from densebench.train.loop import train_run

    train_run(args.spec, args.store, args.out_dir, args.weights, args.threads)


def cmd_predict(args: argparse.Namespace) -> None:
    """Predict a trained run's test split into per-image confusion matrices."""
    prepare_model_job(args.spec.model if args.spec is not None else None, args.weights)
    from densebench.evaluate.predict import predict_run

    predict_run(args.checkpoint, args.store, args.out, args.weights, args.threads, args.spec)


def cmd_score(args: argparse.Namespace) -> None:
    """Metrics and bootstrap CIs of runs, from their confusion matrices (one seed for all)."""
    import pandas as pd

    from densebench.atomic import write_table
    from densebench.evaluate.bootstrap import score_run

    options = {"definitions": args.definitions, "exclude_background": args.exclude_background}
    frames = [
        score_run(path, _score_keys(path, args.variants), args.replicates, args.seed, **options)
        for path in args.confusions
    ]
    write_table(pd.concat(frames, ignore_index=True), args.out)


def _score_keys(path: Path, variants: bool) -> dict[str, str]:
    """The key columns of a run's scores: its (dataset, model, strategy) and, with `variants`,
    its run folder's variant ('' for a cell's own run; densebench.variants)."""
    from densebench.evaluate.confusion import run_keys
    from densebench.variants import of_run_folder

    keys = run_keys(path)
    if variants:
        keys["variant"] = of_run_folder(Path(path).parent.name).name
    return keys


def cmd_aggregate(args: argparse.Namespace) -> None:
    """Collect per-run metrics into the tidy results table."""
    from densebench.atomic import write_table
    from densebench.report.aggregate import aggregate

    write_table(aggregate(args.inputs), args.out)


def cmd_fetch_published(args: argparse.Namespace) -> None:
    """Download one published results file at the pinned commit, sha256-verified."""
    from densebench.report.published import fetch_published

    fetch_published(args.stem, args.sha256, args.out, url=args.url)


def report_inputs(args: argparse.Namespace):
    """The source table and the grid cut to it (every report product starts here)."""
    from densebench.report.grid import Grid
    from densebench.report.sources import read_tidy

    table = read_tidy(args.table)
    return table, Grid.from_json(args.grid).within(table)


def cmd_source_table(args: argparse.Namespace) -> None:
    """The tidy table of one results source (reproduced, published or merged)."""
    from densebench.atomic import write_table
    from densebench.report.sources import source_table

    write_table(source_table(args.source, args.reproduced, args.published), args.out)


def cmd_table(args: argparse.Namespace) -> None:
    """One kind of report table of a source's table (CSV, Markdown and LaTeX)."""
    from densebench.report import stats, tables

    table, grid = report_inputs(args)
    writers = {
        "per_strategy": lambda: tables.strategy_tables(table, grid, args.out),
        "per_class": lambda: tables.class_tables(table, grid, args.out),
        "strategy_comparison": lambda: tables.write_strategy_comparison(table, grid, args.out),
        "friedman": lambda: stats.write_friedman(table, grid, args.out.parent),
    }
    if args.kind in ("per_strategy", "per_class"):
        args.out.mkdir(parents=True, exist_ok=True)  # a folder of tables (may stay empty)
    for path in writers[args.kind]():
        print(f"wrote {path}", file=sys.stderr)


def cmd_summaries(args: argparse.Namespace) -> None:
    """Best model per dataset and average-rank leaderboard of a source's table."""
    from densebench.report.ranking import write_summaries

    table, grid = report_inputs(args)
    for path in write_summaries(table, grid, args.out_dir):
        print(f"wrote {path}", file=sys.stderr)


def cmd_cards(args: argparse.Namespace) -> None:
    """Model or dataset cards (the paper's Tables A1/B1) from registry records."""
    from densebench.report.tables import write_cards

    for path in write_cards(args.records, args.kind, args.out):
        print(f"wrote {path}", file=sys.stderr)


def cmd_figure(args: argparse.Namespace) -> None:
    """One report figure of a source's table, as PNG and PDF."""
    from densebench.report.figures import FIGURES, save_figure
    from densebench.report.stats import build_cd_diagram

    table, grid = report_inputs(args)
    builders = {**FIGURES, "critical_difference": build_cd_diagram}
    given = {"strategy": args.strategy, "metric": args.metric}
    options = {k: v for k, v in given.items() if v is not None}
    save_figure(builders[args.kind](table, grid, **options), args.png, args.pdf)


def cmd_paired_bootstrap(args: argparse.Namespace) -> None:
    """Paired bootstrap differences of a dataset's runs on the same test images."""
    from densebench.report.grid import Grid
    from densebench.report.stats import paired_bootstrap_files, write_paired

    grid = Grid.from_json(args.grid)
    options = {"definitions": args.definitions, "exclude_background": args.exclude_background}
    frame = paired_bootstrap_files(
        args.confusions, args.replicates, args.seed, **options, grid=grid
    )
    if set(frame["dataset"]) - {args.dataset}:
        raise ValueError(f"paired-bootstrap --dataset {args.dataset}: runs of other datasets given")
    write_paired(frame, grid, args.csv, args.md)


def cmd_ablation_figure(args: argparse.Namespace) -> None:
    """The figure of an ablation from the scores of its runs (PNG and PDF)."""
    import numpy as np
    import pandas as pd

    from densebench.report.ablations import build_lora_rank, build_token_similarity
    from densebench.report.aggregate import aggregate
    from densebench.report.figures import save_figure
    from densebench.report.grid import Grid

    if args.kind == "qualitative":
        from densebench.report.ablations import build_qualitative

        save_figure(
            build_qualitative(np.load(args.predictions), Grid.from_json(args.grid), args.classes),
            args.png,
            args.pdf,
        )
        return
    table = aggregate([args.scores])
    grid = Grid.from_json(args.grid).within(table)
    if args.kind == "lora_rank":
        if args.ranks is None:
            raise ValueError("ablation-figure lora_rank: pass --ranks '{strategy: rank}'")
        fig = build_lora_rank(table, grid, args.ranks)
    else:
        if not args.similarity:
            raise ValueError("ablation-figure token_similarity: pass --similarity TABLE ...")
        similarity = pd.concat([pd.read_csv(p) for p in args.similarity], ignore_index=True)
        fig = build_token_similarity(similarity, table, grid)
    save_figure(fig, args.png, args.pdf)


def cmd_variant_report(args: argparse.Namespace) -> None:
    """A product of variant runs or of the UNet baseline: the input-size figure, the
    training-seed spread table, or the baseline's table and figure."""
    from densebench.report import variants
    from densebench.report.figures import save_figure
    from densebench.report.grid import Grid

    scores = variants.read_variant_scores(args.scores)
    grid = Grid.from_json(args.grid)
    if args.kind == "input_size":
        save_figure(variants.build_input_size(scores, grid), args.png, args.pdf)
    elif args.kind == "seed_spread":
        variants.write_seed_spread(scores, grid, args.stem)
    else:
        from densebench.report.sources import read_tidy

        if args.pfms is None:
            raise ValueError("variant-report baseline_unet: pass --pfms <results source table>")
        pfms = read_tidy(args.pfms)
        grid = grid.within(pfms)
        variants.write_baseline_table(scores, pfms, grid, args.stem)
        save_figure(variants.build_baseline_figure(scores, pfms, grid), args.png, args.pdf)


def cmd_token_similarity(args: argparse.Namespace) -> None:
    """Mean pairwise cosine similarity of the patch tokens of trained runs on test images."""
    import numpy as np
    import pandas as pd

    from densebench.atomic import atomic_output, write_table
    from densebench.evaluate.confusion import RUN_KEYS
    from densebench.evaluate.predict import token_similarity

    rows, maps = [], {}
    for checkpoint in args.checkpoints:
        keys = dict(zip(RUN_KEYS, checkpoint.parts[-4:-1], strict=True))
        value, query = token_similarity(
            checkpoint, args.store, args.weights, args.images, args.queries
        )
        rows.append({**keys, "mean_similarity": value, "images": args.images})
        maps[keys["strategy"]] = query
    write_table(pd.DataFrame(rows), args.out)
    with atomic_output(args.maps) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **maps)


def cmd_qualitative(args: argparse.Namespace) -> None:
    """Predictions of trained runs on their first test images, for the qualitative figure."""
    import numpy as np

    from densebench.atomic import atomic_output
    from densebench.evaluate.confusion import RUN_KEYS
    from densebench.evaluate.predict import qualitative_predictions

    arrays = {}
    for checkpoint in args.checkpoints:
        keys = dict(zip(RUN_KEYS, checkpoint.parts[-4:-1], strict=True))
        pictures, truths, predictions, ids = qualitative_predictions(
            checkpoint, args.store, args.weights, args.images
        )
        arrays["image"], arrays["truth"], arrays["ids"] = (
            np.stack(pictures),
            np.stack(truths),
            np.array(ids),
        )
        arrays[f"pred_{keys['strategy']}"] = np.stack(predictions)
    with atomic_output(args.out) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def cmd_reproduction(args: argparse.Namespace) -> None:
    """The reproduction report: our runs against the published results, cell by cell."""
    from densebench.report.grid import Grid
    from densebench.report.reproduction import write_reproduction
    from densebench.report.sources import published_table, read_tidy

    ours, paper = read_tidy(args.reproduced), published_table(args.published)
    stem = args.out
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in ("md", "html", "csv")]
    for path in write_reproduction(ours, paper, Grid.from_json(args.grid), *paths):
        print(f"wrote {path}", file=sys.stderr)


def cmd_params(args: argparse.Namespace) -> None:
    """Print trainable and total parameters of a (model, strategy) on a dataset (meta device)."""
    from densebench.config import load_config, registry_path
    from densebench.models.segmenter import build_on_meta, count_parameters
    from densebench.registry import Registries
    from densebench.spec import build_run_spec

    if not args.config.is_file():
        raise FileNotFoundError(
            f"config {args.config} not found: run from the workflow's root folder or pass "
            "--config FILE (e.g. config/demo.yaml for the demo)"
        )
    print(f"densebench params: counting under config {args.config}", file=sys.stderr)
    cfg = load_config(args.config)
    reg = Registries.load(*(registry_path(cfg, axis) for axis in AXES))
    names = {"models": [args.model], "strategies": [args.strategy], "datasets": [args.dataset]}
    reg.check_names(names)
    spec = build_run_spec(cfg, args.dataset, args.model, args.strategy, reg)
    model = build_on_meta(spec)
    counts = count_parameters(model)
    row = {"model": args.model, "strategy": args.strategy, "dataset": args.dataset, **counts}
    print(json.dumps({**row, "adapted_modules": len(model.adapted_modules)}))


def add(sub, name: str, func: Callable, arguments: Sequence[tuple[tuple, dict]]) -> None:
    """Register a subcommand with its arguments."""
    parser = sub.add_parser(name, help=func.__doc__)
    for flags, kwargs in arguments:
        parser.add_argument(*flags, **kwargs)
    parser.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of all subcommands."""
    p = argparse.ArgumentParser(prog="densebench", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="command")
    path = {"type": Path, "required": True}
    opt_path = {"type": Path, "default": None}
    js = {"type": json_arg, "required": True}
    req = {"required": True}
    paths = {"type": Path, "nargs": "+"}
    threads = (("--threads",), {"type": int, "default": 1})
    dataset_card = [(("--dataset",), req), (("--card",), js)]
    add(sub, "synthesize", cmd_synthesize, [(("--card",), js), (("--out",), path)])
    add(sub, "download", cmd_download, [*dataset_card, (("--out",), path)])
    add(
        sub,
        "convert",
        cmd_convert,
        [
            *dataset_card,
            (("--raw",), path),
            (("--out",), path),
            (("--split-policy",), req),
            (("--seed",), {"type": int, "required": True}),
            (("--fractions",), {"type": float, "nargs": 3, "required": True}),
            (("--split-list",), opt_path),
        ],
    )
    add(sub, "manual-check", cmd_manual_check, [*dataset_card, (("--raw",), path)])
    add(sub, "unpack", cmd_unpack, [*dataset_card, (("--raw",), path), (("--out",), path)])
    add(sub, "split-list", cmd_split_list, [*dataset_card, (("--out",), path)])
    add(sub, "weights", cmd_weights, [(("--model",), req), (("--record",), js), (("--out",), path)])
    add(
        sub,
        "pretrain",
        cmd_pretrain,
        [(("--model",), req), (("--record",), js), (("--out",), path)],
    )
    add(
        sub,
        "preflight",
        cmd_preflight,
        [
            (("--models",), {"type": json_arg, "default": None}),
            (("--config",), {"type": Path, "default": Path("config/config.yaml")}),
            (("--out",), path),
            (("--timeout",), {"type": float, "default": 10.0}),
        ],
    )
    add(
        sub,
        "train",
        cmd_train,
        [
            (("--spec",), {"type": spec_arg, "required": True}),
            (("--store",), path),
            (("--out-dir",), path),
            (("--weights",), opt_path),
            threads,
        ],
    )
    add(
        sub,
        "predict",
        cmd_predict,
        [
            (("--spec",), {"type": spec_arg, "default": None}),
            (("--checkpoint",), path),
            (("--store",), path),
            (("--out",), path),
            (("--weights",), opt_path),
            threads,
        ],
    )
    add(
        sub,
        "score",
        cmd_score,
        [
            (("--out",), path),
            (("--replicates",), {"type": int, "default": 1000}),
            (("--seed",), {"type": int, "default": 42}),
            (("--definitions",), {"choices": ("paper", "standard"), "default": "paper"}),
            (("--exclude-background",), {"action": "store_true"}),
            (("--variants",), {"action": "store_true"}),
            (("confusions",), paths),
        ],
    )
    add(sub, "aggregate", cmd_aggregate, [(("--out",), path), (("inputs",), paths)])
    add(
        sub,
        "fetch-published",
        cmd_fetch_published,
        [
            (("--stem",), req),
            (("--sha256",), req),
            (("--out",), path),
            (
                ("--url",),
                {"default": None, "help": "default: the pinned commit's Data/<stem>.json"},
            ),
        ],
    )
    source = [(("--table",), path), (("--grid",), js)]
    add(
        sub,
        "source-table",
        cmd_source_table,
        [
            (("--source",), {"choices": ("reproduced", "published", "merged"), "required": True}),
            (("--out",), path),
            (("--reproduced",), opt_path),
            (
                ("--published",),
                {"type": json_arg, "default": None, "help": "{strategy: {path, sha256}}"},
            ),
        ],
    )
    kinds = ("per_strategy", "per_class", "strategy_comparison", "friedman")
    out_help = "a folder (per_strategy, per_class) or a file stem (.csv/.md/.tex are added)"
    add(
        sub,
        "table",
        cmd_table,
        [
            (("kind",), {"choices": kinds}),
            *source,
            (("--out",), {**path, "help": out_help}),
        ],
    )
    add(sub, "summaries", cmd_summaries, [*source, (("--out-dir",), path)])
    add(
        sub,
        "cards",
        cmd_cards,
        [
            (("--kind",), {"choices": ("models", "datasets"), "required": True}),
            (("--records",), js),
            (("--out",), {**path, "help": "file stem (.csv/.md/.tex are added)"}),
        ],
    )
    figures = ("figure3", "figure4", "heatmap", "dataset_sota", "average_rank")
    add(
        sub,
        "figure",
        cmd_figure,
        [
            (("kind",), {"choices": (*figures, "critical_difference")}),
            *source,
            (("--png",), path),
            (("--pdf",), path),
            (("--strategy",), {"default": None, "help": "the heat map's strategy"}),
            (("--metric",), {"default": None, "help": "Figure 3's metric (default Mean_Dice)"}),
        ],
    )
    add(
        sub,
        "paired-bootstrap",
        cmd_paired_bootstrap,
        [
            (("--dataset",), req),
            (("--grid",), js),
            (("--replicates",), {"type": int, "default": 1000}),
            (("--seed",), {"type": int, "default": 42}),
            (("--definitions",), {"choices": ("paper", "standard"), "default": "paper"}),
            (("--exclude-background",), {"action": "store_true"}),
            (("--csv",), path),
            (("--md",), path),
            (("confusions",), paths),
        ],
    )
    add(
        sub,
        "ablation-figure",
        cmd_ablation_figure,
        [
            (("kind",), {"choices": ("lora_rank", "token_similarity", "qualitative")}),
            (("--scores",), opt_path),
            (("--predictions",), {**opt_path, "help": "qualitative: the predictions (.npz)"}),
            (("--classes",), {"type": json_arg, "default": None, "help": "qualitative: names"}),
            (("--grid",), js),
            (("--ranks",), {"type": json_arg, "default": None, "help": "{strategy: LoRA rank}"}),
            (("--similarity",), {"type": Path, "nargs": "*", "help": "token-similarity tables"}),
            (("--png",), path),
            (("--pdf",), path),
        ],
    )
    add(
        sub,
        "variant-report",
        cmd_variant_report,
        [
            (("kind",), {"choices": ("input_size", "seed_spread", "baseline_unet")}),
            (("--scores",), {**path, "help": "scores of `densebench score --variants`"}),
            (("--grid",), js),
            (("--pfms",), {**opt_path, "help": "baseline_unet: the PFMs' results source table"}),
            (("--stem",), {**opt_path, "help": "tables: the output path without extension"}),
            (("--png",), opt_path),
            (("--pdf",), opt_path),
        ],
    )
    add(
        sub,
        "token-similarity",
        cmd_token_similarity,
        [
            (("--store",), path),
            (("--weights",), opt_path),
            (("--images",), {"type": int, "default": 8}),
            (("--queries",), {"type": int, "default": 4}),
            (("--out",), path),
            (("--maps",), path),
            (
                ("checkpoints",),
                {**paths, "help": "results/runs/<dataset>/<model>/<strategy>/best.pt"},
            ),
        ],
    )
    add(
        sub,
        "qualitative",
        cmd_qualitative,
        [
            (("--store",), path),
            (("--weights",), opt_path),
            (("--images",), {"type": int, "default": 3}),
            (("--out",), path),
            (
                ("checkpoints",),
                {**paths, "help": "results/runs/<dataset>/<model>/<strategy>/best.pt"},
            ),
        ],
    )
    add(
        sub,
        "reproduction",
        cmd_reproduction,
        [
            (("--reproduced",), path),
            (("--published",), js),
            (("--grid",), js),
            (("--out",), {**path, "help": "file stem (.md/.html/.csv are added)"}),
        ],
    )
    add(
        sub,
        "params",
        cmd_params,
        [
            (("--model",), {"required": True}),
            (("--strategy",), {"required": True}),
            (
                ("--dataset",),
                {"required": True, "help": "its classes and input size shape the model"},
            ),
            (
                ("--config",),
                {
                    "type": Path,
                    "default": Path("config/config.yaml"),
                    "help": "workflow config (default: %(default)s, the Snakefile's configfile)",
                },
            ),
        ],
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `densebench` console script.

    A failure writes to stderr (a job's log) its traceback, chained causes included and cut to
    the last 40 lines, then the error's type and, last, the message as `densebench: error: ...`
    (cut to 40 lines), so that `tail` of a log shows what went wrong.
    """
    import traceback

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        keep = 40
        trace = traceback.TracebackException.from_exception(error)
        frames = "".join(trace.format()).splitlines()
        summary = "".join(trace.format_exception_only()).splitlines()
        frames = frames[: len(frames) - len(summary)]  # the message comes once, last
        if len(frames) > keep:
            frames = [f"... ({len(frames) - keep} earlier traceback lines cut)", *frames[-keep:]]
        message = f"densebench: error: {error}".splitlines()
        if len(message) > keep:
            message = [*message[:keep], f"... ({len(message) - keep} more lines cut)"]
        kind = type(error)
        name = f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")
        print("\n".join([*frames, name, *message]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
