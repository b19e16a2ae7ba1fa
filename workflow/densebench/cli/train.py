"""`densebench` commands of the runs: train, predict, score, and aggregate the scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from densebench.cli.args import (
    BOOTSTRAP,
    THREADS,
    arg,
    command,
    json_arg,
    opt_path,
    path,
    paths,
    spec_arg,
)


def prepare_model_job(model: str | None, weights: Path | None) -> None:
    """Before any model library is imported: no network inside a job, and the model's weights
    snapshot complete (when the job has one)."""
    from densebench.models.weights import check_snapshot, enforce_offline

    enforce_offline()
    if weights is not None and model is not None:
        check_snapshot(model, weights)


@command(
    "train",
    arg(
        "--spec",
        type=spec_arg,
        action="append",
        required=True,
        help="a run spec; several (with as many --out-dir and --shared-out): one shared job",
    ),
    arg("--store", type=Path, required=True),
    arg("--out-dir", type=Path, action="append", required=True, help="the run's folder"),
    opt_path("--weights"),
    THREADS,
    arg("--attempt", type=int, default=1, help="the job's attempt (retries)"),
    arg(
        "--site",
        type=json_arg,
        default=None,
        help="the config's `resources` (GPU classes), JSON or @file",
    ),
    opt_path("--shared-out", help="train the runs together; their outputs go to this folder"),
    opt_path("--from-shared", help="take the run's outputs from its shared job's folder"),
)
def cmd_train(args: argparse.Namespace) -> None:
    """Train one run into --out-dir (best.pt, train_log.csv, provenance.json); or, with
    --shared-out, several frozen-encoder runs of one (dataset, model) on one encoder forward
    (densebench.train.shared); or, with --from-shared, take a run a shared job trained."""
    specs, out_dirs = args.spec, args.out_dir
    if len(specs) != len(out_dirs):
        raise SystemExit("train: give one --out-dir per --spec")
    if len(specs) > 1 and args.shared_out is None:
        raise SystemExit("train: several --spec train together only with --shared-out")
    if args.from_shared is not None:
        if len(specs) != 1 or args.shared_out is not None:
            raise SystemExit("train: --from-shared takes one run and no --shared-out")
        from densebench.train.shared import take_staged

        take_staged(specs[0], args.from_shared, out_dirs[0])
        return
    prepare_model_job(specs[0].model, args.weights)
    if args.shared_out is not None:
        from densebench.train.shared import train_shared

        train_shared(
            specs,
            args.store,
            out_dirs,
            args.shared_out,
            args.weights,
            args.threads,
            args.attempt,
            args.site,
        )
        return
    from densebench.train.loop import train_run

    train_run(
        specs[0], args.store, out_dirs[0], args.weights, args.threads, args.attempt, args.site
    )


@command(
    "predict",
    arg("--spec", type=spec_arg, default=None),
    path("--checkpoint"),
    path("--store"),
    path("--out"),
    opt_path("--weights"),
    THREADS,
    opt_path("--instances", help="the dataset's instance store: also write --objects-out"),
    arg("--kind", choices=("nucleus", "gland"), default=None, help="the objects of --instances"),
    opt_path("--objects-out", help="the run's object tallies (objects.npz)"),
)
def cmd_predict(args: argparse.Namespace) -> None:
    """Predict a trained run's test split into per-image confusion matrices and, with
    --instances, per-image object tallies from the same predictions."""
    prepare_model_job(args.spec.model if args.spec is not None else None, args.weights)
    objects = (args.instances, args.kind, args.objects_out)
    if any(o is not None for o in objects) and None in objects:
        raise SystemExit("predict: --instances, --kind and --objects-out go together")
    if args.instances is None:
        from densebench.evaluate.predict import predict_run

        predict_run(args.checkpoint, args.store, args.out, args.weights, args.threads, args.spec)
        return
    from densebench.evaluate.predict_objects import predict_objects_run

    predict_objects_run(
        args.checkpoint, args.store, args.out, objects, args.weights, args.threads, args.spec
    )


@command(
    "score",
    path("--out"),
    BOOTSTRAP,
    arg("--variants", action="store_true"),
    arg(
        "--objects",
        type=Path,
        nargs="+",
        default=[],
        help="object tallies (objects.npz) of runs also given as confusions",
    ),
    paths("confusions"),
)
def cmd_score(args: argparse.Namespace) -> None:
    """Metrics and bootstrap CIs of runs, from their confusion matrices and, where given, their
    object tallies (one seed for all: the same image draws)."""
    import pandas as pd

    from densebench.atomic import write_table
    from densebench.evaluate.bootstrap import score_run

    options = {"definitions": args.definitions, "exclude_background": args.exclude_background}
    frames = [
        score_run(path, _score_keys(path, args.variants), args.replicates, args.seed, **options)
        for path in args.confusions
    ]
    confusions = {file.parent.resolve(): file for file in args.confusions}
    if args.objects:
        frames += _object_scores(args, confusions, options)
    write_table(pd.concat(frames, ignore_index=True), args.out)


def _object_scores(args: argparse.Namespace, confusions: dict, options: dict) -> list:
    """Score rows of the object tallies given, each beside its run's confusion file."""
    from densebench.evaluate.object_tallies import check_same_images, score_objects

    frames = []
    for tallies in args.objects:
        confusion = confusions.get(tallies.parent.resolve())
        if confusion is None:
            raise SystemExit(f"{tallies}: its run's confusion.npz is not among the scored files")
        check_same_images(tallies, confusion)
        keys = _score_keys(confusion, args.variants)
        frames.append(score_objects(tallies, keys, args.replicates, args.seed, **options))
    return frames


def _score_keys(path: Path, variants: bool) -> dict[str, str]:
    """The key columns of a run's scores: its (dataset, model, strategy) and, with `variants`,
    its run folder's variant ('' for a cell's own run; densebench.variants)."""
    from densebench.evaluate.confusion import run_keys
    from densebench.variants import of_run_folder

    keys = run_keys(path)
    if variants:
        keys["variant"] = of_run_folder(Path(path).parent.name).name
    return keys


@command("aggregate", path("--out"), paths("inputs"))
def cmd_aggregate(args: argparse.Namespace) -> None:
    """Collect per-run metrics into the tidy results table."""
    from densebench.atomic import write_table
    from densebench.report.aggregate import aggregate

    write_table(aggregate(args.inputs), args.out)
