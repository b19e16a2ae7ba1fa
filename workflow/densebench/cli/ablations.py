"""`densebench` commands of the ablations and variant runs: their extra predictions, figures
and tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from densebench.cli.args import (
    CHECKPOINTS,
    arg,
    command,
    json_arg,
    json_option,
    opt_path,
    path,
)


@command(
    "ablation-figure",
    arg("kind", choices=("lora_rank", "token_similarity", "qualitative")),
    opt_path("--scores"),
    opt_path("--predictions", help="qualitative: the predictions (.npz)"),
    arg("--classes", type=json_arg, default=None, help="qualitative: names"),
    json_option("--grid"),
    arg("--ranks", type=json_arg, default=None, help="{strategy: LoRA rank}"),
    arg("--similarity", type=Path, nargs="*", help="token-similarity tables"),
    path("--png"),
    path("--pdf"),
)
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


@command(
    "variant-report",
    arg("kind", choices=("input_size", "seed_spread", "baseline_unet")),
    path("--scores", help="scores of `densebench score --variants`"),
    json_option("--grid"),
    opt_path("--pfms", help="baseline_unet: the PFMs' results source table"),
    opt_path("--stem", help="tables: the output path without extension"),
    opt_path("--png"),
    opt_path("--pdf"),
)
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


@command(
    "token-similarity",
    path("--store"),
    opt_path("--weights"),
    arg("--images", type=int, default=8),
    arg("--queries", type=int, default=4),
    path("--out"),
    path("--maps"),
    CHECKPOINTS,
)
def cmd_token_similarity(args: argparse.Namespace) -> None:
    """Mean pairwise cosine similarity of the patch tokens of trained runs on test images."""
    import numpy as np
    import pandas as pd

    from densebench.atomic import atomic_output, write_table
    from densebench.evaluate.predict import token_similarity
    from densebench.variants import RUN_KEYS

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


@command(
    "qualitative",
    path("--store"),
    opt_path("--weights"),
    arg("--images", type=int, default=3),
    path("--out"),
    CHECKPOINTS,
)
def cmd_qualitative(args: argparse.Namespace) -> None:
    """Predictions of trained runs on their first test images, for the qualitative figure."""
    import numpy as np

    from densebench.atomic import atomic_output
    from densebench.evaluate.predict import qualitative_predictions
    from densebench.variants import RUN_KEYS

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
