"""The command registry of `densebench` and the argument types its commands share.

A command is a handler registered with its options where it is defined::

    @command("aggregate", path("--out"), arg("inputs", type=Path, nargs="+"))
    def cmd_aggregate(args): ...

`command` records (name, handler, arguments) in `COMMANDS`; `densebench.cli.build_parser` turns
every record into a subparser. `arg` takes exactly `argparse.add_argument`'s arguments.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from densebench.spec import RunSpec

Handler = Callable[[argparse.Namespace], None]


@dataclass(frozen=True)
class Arg:
    """One argument of a command: `argparse.ArgumentParser.add_argument(*flags, **options)`."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(*self.flags, **self.options)


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, its handler and its arguments."""

    name: str
    handler: Handler
    arguments: tuple[Arg, ...]

    @property
    def help(self) -> str | None:
        return self.handler.__doc__


COMMANDS: dict[str, Command] = {}
"""Every registered subcommand by name, in registration order (the order of `--help`)."""


def arg(*flags: str, **options: Any) -> Arg:
    """An argument, with `add_argument`'s flags and options."""
    return Arg(flags, options)


def command(name: str, *arguments: Arg | tuple[Arg, ...]) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of subcommand `name` with `arguments`
    (single `Arg`s or tuples of them, for options several commands share)."""
    flat = tuple(a for item in arguments for a in (item if isinstance(item, tuple) else (item,)))

    def register(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"densebench command {name!r} registered twice")
        COMMANDS[name] = Command(name, handler, flat)
        return handler

    return register


# ---- argument types ---------------------------------------------------------------------------


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


class KeepGiven(argparse.Action):
    """Store the value only when one was given: an optional positional `kind` shares its dest
    with a deprecated `--kind` option, which an absent positional must not overwrite."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values is not None:
            setattr(namespace, self.dest, values)


# ---- arguments several commands share ---------------------------------------------------------


def path(*flags: str, **options: Any) -> Arg:
    """A required path option."""
    return arg(*flags, type=Path, required=True, **options)


def opt_path(*flags: str, **options: Any) -> Arg:
    """An optional path option (default None)."""
    return arg(*flags, type=Path, default=None, **options)


def json_option(*flags: str, **options: Any) -> Arg:
    """A required JSON option (text or @file)."""
    return arg(*flags, type=json_arg, required=True, **options)


def paths(name: str, **options: Any) -> Arg:
    """One or more positional paths."""
    return arg(name, type=Path, nargs="+", **options)


THREADS = arg("--threads", type=int, default=1)
DATASET_CARD = (arg("--dataset", required=True), json_option("--card"))
SOURCE = (path("--table"), json_option("--grid"))
"""A report product's inputs: the source's tidy table and its grid."""
BOOTSTRAP = (
    arg("--replicates", type=int, default=1000),
    arg("--seed", type=int, default=42),
    arg("--definitions", choices=("paper", "standard"), default="paper"),
    arg("--exclude-background", action="store_true"),
)
"""The options of a bootstrap over per-image confusion matrices (score, paired-bootstrap)."""
CHECKPOINTS = paths("checkpoints", help="results/runs/<dataset>/<model>/<strategy>/best.pt")
