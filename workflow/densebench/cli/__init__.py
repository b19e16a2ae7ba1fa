"""`densebench`: the command line every Snakemake rule calls.

Each subcommand is a thin adapter from arguments to one package function, registered with its
options beside its handler (`densebench.cli.args.command`), one module per stage; heavy
libraries (torch, timm, peft, matplotlib) are imported only by the subcommands that use them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from densebench.cli.args import COMMANDS, json_arg, spec_arg

# isort: off
# Importing a stage's module registers its commands; `--help` lists them in this order.
from densebench.cli import data, models, train, report, ablations

# isort: on

__all__ = ["COMMANDS", "build_parser", "json_arg", "main", "spec_arg"]

STAGES = (data, models, train, report, ablations)
"""The command modules, one per stage of the workflow."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of all registered subcommands."""
    parser = argparse.ArgumentParser(prog="densebench", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="command", dest="command")
    for command in COMMANDS.values():
        subparser = sub.add_parser(command.name, help=command.help)
        for argument in command.arguments:
            argument.add_to(subparser)
        subparser.set_defaults(func=command.handler)
    return parser


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
