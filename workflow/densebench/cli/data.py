"""`densebench` commands of the data stage: raw files in, validated zarr stores out."""

from __future__ import annotations

import argparse
import json

from densebench.cli.args import DATASET_CARD, arg, command, json_option, opt_path, path


@command("synthesize", json_option("--card"), path("--out"))
def cmd_synthesize(args: argparse.Namespace) -> None:
    """Generate a synthetic dataset's raw files."""
    from densebench.data.synthetic import write_synthetic_raw

    write_synthetic_raw(args.card, args.out)


@command("download", DATASET_CARD, path("--out"))
def cmd_download(args: argparse.Namespace) -> None:
    """Download a dataset's raw files listed in its card (sha256-verified, resumable)."""
    from densebench.data.download import fetch_sources

    fetch_sources(args.dataset, args.card, args.out)


@command(
    "convert",
    DATASET_CARD,
    path("--raw"),
    path("--out"),
    arg("--split-policy", required=True),
    arg("--seed", type=int, required=True),
    arg("--fractions", type=float, nargs=3, required=True),
    opt_path("--split-list"),
)
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


@command(
    "convert-instances",
    DATASET_CARD,
    path("--raw"),
    path("--store", help="the dataset's semantic store: the instances follow its samples"),
    path("--out"),
)
def cmd_convert_instances(args: argparse.Namespace) -> None:
    """Convert raw files again, keeping only the ground-truth instances, into the dataset's
    instance store (resources/datasets/<dataset>.instances.zarr)."""
    from densebench.data.converters import get_converter
    from densebench.data.instances import write_instances

    converter = args.card.get("converter")
    if not converter:
        raise SystemExit(f"dataset {args.dataset}: no converter is registered in its card")
    samples = get_converter(converter)(args.raw, args.card)
    write_instances(samples, args.card, args.dataset, args.store, args.out)


@command("manual-check", DATASET_CARD, path("--raw"))
def cmd_manual_check(args: argparse.Namespace) -> None:
    """Fail with instructions unless a registration-only dataset's files were dropped."""
    from densebench.data.download import check_manual_drop

    check_manual_drop(args.dataset, args.card, args.raw)


@command(
    "local-check",
    DATASET_CARD,
    path("--local", help="the dataset's local copy (config local_copies)"),
)
def cmd_local_check(args: argparse.Namespace) -> None:
    """Fail with the remedy unless a dataset's local copy is there and what its card describes."""
    from densebench.data.download import check_local_copy

    check_local_copy(args.dataset, args.card, args.local)


@command(
    "unpack",
    DATASET_CARD,
    opt_path("--raw", help="resources/raw/<dataset>: the download or hand drop"),
    opt_path("--local", help="instead: the dataset's local copy (config local_copies), only read"),
    path("--out"),
)
def cmd_unpack(args: argparse.Namespace) -> None:
    """Verify a dataset's raw files (its raw folder or its local copy) and unpack them for its
    converter."""
    from densebench.data.download import unpack_sources

    if (args.raw is None) == (args.local is None):
        raise SystemExit("densebench unpack: give exactly one of --raw and --local")
    unpack_sources(args.dataset, args.card, args.raw, args.out, local=args.local)


@command("split-list", DATASET_CARD, path("--out"))
def cmd_split_list(args: argparse.Namespace) -> None:
    """Download the authors' published split list of a dataset at its pinned commit."""
    from densebench.data.download import fetch_split_list

    print(fetch_split_list(args.dataset, args.card, args.out))
