"""`densebench` commands of the models stage: weights snapshots, hub preflight, parameter counts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from densebench.cli.args import arg, command, json_arg, json_option, path

CONFIG = Path("config/config.yaml")
"""The Snakefile's configfile, relative to the workflow's root folder."""


@command("weights", arg("--model", required=True), json_option("--record"), path("--out"))
def cmd_weights(args: argparse.Namespace) -> None:
    """Download a model's weights snapshot (token from HF_TOKEN, never printed)."""
    from densebench.models.weights import fetch_weights

    snapshot = fetch_weights(args.model, args.record, args.out)
    print(
        f"{args.model}: {snapshot['repo']} at {snapshot['commit']}, {len(snapshot['files'])} files"
    )


@command("pretrain", arg("--model", required=True), json_option("--record"), path("--out"))
def cmd_pretrain(args: argparse.Namespace) -> None:
    """Pretrain a demo model (`weights: pretrain`) into a local weights snapshot."""
    from densebench.models.pretrain import write_pretrained

    manifest = write_pretrained(args.model, args.record, args.out)
    print(
        f"{args.model}: pretrained on {manifest['identity']['pretrain']['images']} images per "
        f"generator, loss {manifest['first_loss']:.3f} -> {manifest['final_loss']:.3f}, "
        f"{manifest['seconds']} s"
    )


@command(
    "preflight",
    arg("--models", type=json_arg, default=None),
    arg("--config", type=Path, default=CONFIG),
    path("--out"),
    arg("--timeout", type=float, default=10.0),
)
def cmd_preflight(args: argparse.Namespace) -> None:
    """Check hub access to models (--models records, else the --config grid), no download."""
    from densebench.config import load_config, registry_path
    from densebench.models.preflight import preflight, summary, write_preflight
    from densebench.registry import AXES, Registries

    models = args.models
    if models is None:  # the grid's models; not the whole plan, whose imports need the data env
        config = load_config(args.config)
        registries = Registries.load(*(registry_path(config, a) for a in AXES))
        registries.check_names({"models": config["models"]})
        models = {name: registries.models[name] for name in config["models"]}
    rows = preflight(models, timeout=args.timeout)
    write_preflight(rows, args.out)
    print(summary(rows))


@command(
    "params",
    arg("--model", required=True),
    arg("--strategy", required=True),
    arg("--dataset", required=True, help="its classes and input size shape the model"),
    arg(
        "--config",
        type=Path,
        default=CONFIG,
        help="workflow config (default: %(default)s, the Snakefile's configfile)",
    ),
)
def cmd_params(args: argparse.Namespace) -> None:
    """Print trainable and total parameters of a (model, strategy) on a dataset (meta device)."""
    from densebench.config import load_config
    from densebench.models.segmenter import build_on_meta, count_parameters
    from densebench.plan import InapplicablePairError, Plan

    if not args.config.is_file():
        raise FileNotFoundError(
            f"config {args.config} not found: run from the workflow's root folder or pass "
            "--config FILE (e.g. config/demo.yaml for the demo)"
        )
    print(f"densebench params: counting under config {args.config}", file=sys.stderr)
    plan = Plan.from_config(load_config(args.config))
    names = {"models": [args.model], "strategies": [args.strategy], "datasets": [args.dataset]}
    plan.registries.check_names(names)
    problem = plan.pair_problem(args.model, args.strategy)
    if problem:
        raise InapplicablePairError(problem)
    spec = plan.spec((args.dataset, args.model, args.strategy, ""))
    model = build_on_meta(spec)
    counts = count_parameters(model)
    row = {"model": args.model, "strategy": args.strategy, "dataset": args.dataset, **counts}
    print(json.dumps({**row, "adapted_modules": len(model.adapted_modules)}))
