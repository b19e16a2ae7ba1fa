"""The `densebench` CLI: argument handling and clear errors."""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import re
import shlex

import pytest

from densebench.cli import COMMANDS, build_parser, json_arg, main, spec_arg
from densebench.report.products import figure_names, figure_product
from tests.conftest import REPO


def test_json_argument_from_text_or_file(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"a": 1}')
    assert json_arg('{"a": 1}') == json_arg(f"@{path}") == {"a": 1}


def test_spec_argument_is_a_run_spec(tmp_path, demo_config, registries, capsys):
    from densebench.spec import build_run_spec

    spec = build_run_spec(demo_config, "demo_nuclei", "demo_vit_p16", "lora", registries)
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    assert spec_arg(spec.to_json()) == spec_arg(f"@{path}") == spec
    with pytest.raises(SystemExit):
        main(["train", "--spec", '{"dataset": "x"}', "--store", "s", "--out-dir", "o"])
    assert "not a run spec: run spec: unknown keys [], missing keys" in capsys.readouterr().err


def test_params_prints_trainable_and_total(capsys):
    args = ["params", "--model", "demo_vit_p8", "--strategy", "lora", "--dataset", "demo_nuclei"]
    assert main(args) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["model"] == "demo_vit_p8" and 0 < counts["trainable"] < counts["total"]


def test_params_counts_under_the_workflow_config_and_says_so(capsys):
    args = ["params", "--model", "PathOrchestra", "--strategy", "lora", "--dataset", "GlaS"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    paper = json.loads(out)  # stdout stays JSON: the config is named on stderr
    assert "config/config.yaml" in err
    assert main([*args, "--config", "config/demo.yaml"]) == 0
    out, err = capsys.readouterr()
    demo = json.loads(out)
    assert "config/demo.yaml" in err
    assert paper["total"] - paper["trainable"] == demo["total"] - demo["trainable"]  # same ViT-L
    assert paper["trainable"] > demo["trainable"]  # the paper's 512-wide decoder, not the demo's


def test_params_needs_a_dataset(capsys):
    with pytest.raises(SystemExit):
        main(["params", "--model", "PathOrchestra", "--strategy", "lora"])
    assert "--dataset" in capsys.readouterr().err


def test_params_rejects_unknown_model(capsys):
    assert (
        main(["params", "--model", "vit_enormous", "--strategy", "lora", "--dataset", "GlaS"]) == 1
    )
    assert "Valid models" in capsys.readouterr().err


def test_convert_without_converter_says_so(tmp_path):
    card = json.dumps({"classes": ["a", "b"]})
    args = ["convert", "--dataset", "CRAG", "--card", card, "--raw", str(tmp_path)]
    args += ["--out", str(tmp_path / "x.zarr"), "--split-policy", "official", "--seed", "1"]
    with pytest.raises(SystemExit, match="no converter is registered"):
        main([*args, "--fractions", "0.7", "0.2", "0.1"])


def test_failures_exit_nonzero_with_a_message(tmp_path, capsys):
    card = json.dumps(
        {"sources": [{"url": "https://x.org", "filename": "consep.zip", "kind": "manual"}]}
    )
    out = tmp_path / "raw" / "CoNSeP"
    code = main(["download", "--dataset", "CoNSeP", "--card", card, "--out", str(out)])
    message = capsys.readouterr().err
    assert code == 1 and f"{out}/" in message and "consep.zip" in message


def test_failures_print_the_traceback_first_and_the_message_last(tmp_path, capsys):
    card = json.dumps(
        {"sources": [{"url": "https://x.org", "filename": "consep.zip", "kind": "manual"}]}
    )
    out = tmp_path / "raw" / "CoNSeP"
    assert main(["download", "--dataset", "CoNSeP", "--card", card, "--out", str(out)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert any("in fetch_sources" in line for line in lines)
    start = lines.index("densebench.data.download.RawDataError")
    assert lines[start + 1].startswith("densebench: error: dataset CoNSeP needs a manual download")
    assert lines[-1].startswith("  consep.zip  from https://x.org")  # the message ends stderr
    assert sum("consep.zip  from" in line for line in lines) == 1  # and is written once


def test_long_tracebacks_and_messages_are_cut(monkeypatch, capsys):
    from dataclasses import replace

    from densebench.cli import COMMANDS

    def chained(args):
        """Fail after 30 chained causes, with a 100-line message."""
        error = None
        for i in range(30):
            try:
                raise OSError(f"cause {i}") from error
            except OSError as caught:
                error = caught
        raise ValueError("\n".join(f"line {i}" for i in range(100))) from error

    monkeypatch.setitem(
        COMMANDS, "manual-check", replace(COMMANDS["manual-check"], handler=chained)
    )
    assert main(["manual-check", "--dataset", "X", "--card", "{}", "--raw", "r"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 + 40 + 1 + 40 + 1
    assert lines[0].endswith("earlier traceback lines cut)") and "OSError: cause 29" in lines
    assert lines[41:43] == ["ValueError", "densebench: error: line 0"]
    assert lines[-1] == "... (60 more lines cut)"


# ---- registration: every command line the rule files write parses ----------------------------

RULES = REPO / "workflow/rules"
CUT = re.compile(r" (?:>|2>&1|\||;)")
"""Where a rule's shell command ends and its redirections begin."""
PLACEHOLDER = re.compile(r"\{([\w.]+)(:q)?\}")
WILDCARDS = {"dataset": "GlaS", "model": "demo_vit_p16", "axis": "model", "source": "merged"}
"""Dummy wildcard values (others: "x"); a kind wildcard takes each kind the command accepts."""
FREE = {
    "weights": "--weights resources/weights/m",
    "background": "--exclude-background",
    "split_list": "--split-list resources/splits/d.json",
    "sources": "--reproduced results/reproduced.csv",
    "raw": "--local /data/GlaS",
    "staged": "--from-shared results/shared/d/m/frozen+cnn_adapter",
}
"""What common.smk's params give where a rule writes `{params.X}` alone (options or nothing);
a figure's `{params.options}` are its product's (densebench.report.products)."""


def rule_commands() -> list[tuple[str, str]]:
    """(rule, shell command before its redirections) of every rule that runs `densebench`."""
    found = []
    for smk in sorted(RULES.glob("*.smk")):
        for rule, body in re.findall(
            r"^rule (\w+):\n(.*?)(?=^\S|\Z)", smk.read_text(), re.M | re.S
        ):
            shell = re.search(r"^ +shell:\n((?: +\".*\"\n?)+)", body, re.M)
            if shell:
                text = ast.literal_eval("(" + shell[1] + ")")
                found.append((f"{smk.name}:{rule}", CUT.split(text, maxsplit=1)[0]))
    return [(rule, text) for rule, text in found if text.startswith("densebench ")]


def subparser(name: str) -> argparse.ArgumentParser:
    return build_parser()._subparsers._group_actions[0].choices[name]


def kinds(name: str) -> list[str]:
    """The kinds a command's positional `kind` accepts (a heat map for one strategy)."""
    kind = next(a for a in subparser(name)._actions if a.dest == "kind" and not a.option_strings)
    return list(kind.choices) if kind.choices else figure_names(["lora", "frozen"])


def dummy(action: argparse.Action, spec: str) -> list[str]:
    """Values an option accepts, from its type, choices and nargs."""
    if action.type is spec_arg:
        return [spec]
    if action.type is json_arg:
        return ["{}"]
    if action.choices:
        return [next(iter(action.choices))]
    value = {int: "1", float: "0.5"}.get(action.type, "some/path")
    count = (
        action.nargs if isinstance(action.nargs, int) else 2 if action.nargs in ("+", "*") else 1
    )
    return [value] * count


def rule_argv(template: str, spec: str, kind: str | None, config: dict) -> list[str]:
    """A rule's command line with dummy values in place of its placeholders."""
    words = template.split()
    argv = words[1:2]
    options = subparser(words[1])._option_string_actions
    wildcards = {**WILDCARDS, "kind": kind}
    for before, word in itertools.pairwise(words[1:]):
        whole = PLACEHOLDER.fullmatch(word)
        name = whole[1] if whole else ""
        if whole and not name.startswith("wildcards.") and before in options:
            argv += dummy(options[before], spec)
        elif whole and name.startswith("input."):
            argv += ["results/runs/d/m/s/best.pt", "results/runs/d/m/t/best.pt"]
        elif whole and name == "params.options" and kind:
            argv += figure_product(kind).cli_options(config).split()
        elif whole and name == "params.runs":  # a shared job's members: spec and folder each
            argv += ["--spec", spec, "--out-dir", "a", "--spec", spec, "--out-dir", "b"]
        elif whole and name.startswith("params."):
            argv += FREE.get(name.removeprefix("params."), "").split()
        else:
            argv.append(PLACEHOLDER.sub(lambda m: wildcards.get(m[1][10:], "x"), word))
    return argv


def test_every_command_line_of_the_rules_parses_to_its_registered_handler(demo_config, registries):
    from densebench.spec import build_run_spec

    spec = build_run_spec(demo_config, "demo_nuclei", "demo_vit_p16", "lora", registries).to_json()
    commands = rule_commands()
    assert len(commands) > 20
    for rule, template in commands:
        name = template.split()[1]
        for kind in kinds(name) if "{wildcards.kind}" in template else [None]:
            argv = rule_argv(template, spec, kind, demo_config)
            try:
                args = build_parser().parse_args(argv)
            except SystemExit:
                pytest.fail(f"{rule}: densebench refuses {shlex.join(argv)}")
            assert args.func is COMMANDS[name].handler, rule


def test_every_handler_is_registered_with_its_options():
    import densebench.cli

    handlers = {
        f
        for stage in densebench.cli.STAGES
        for n, f in vars(stage).items()
        if n.startswith("cmd_") and f.__module__ == stage.__name__
    }
    assert handlers == {c.handler for c in COMMANDS.values()}
    for command in COMMANDS.values():
        assert subparser(command.name).get_default("func") is command.handler


def test_a_kind_is_positional_with_the_old_forms_kept_as_aliases(capsys):
    from densebench.cli.report import figure_name

    cards = ["--records", "{}", "--out", "cards/models"]
    parse = build_parser().parse_args
    assert parse(["cards", "models", *cards]).kind == "models"
    assert parse(["cards", *cards, "--kind", "datasets"]).kind == "datasets"  # deprecated
    with pytest.raises(SystemExit):
        parse(["cards", "tables", *cards])
    with pytest.raises(SystemExit, match="the kind is required"):
        main(["cards", *cards])
    figure = ["--table", "t.csv", "--grid", "{}", "--png", "f.png", "--pdf", "f.pdf"]
    new = figure_name(parse(["figure", "heatmap_lora", *figure]))
    assert new == figure_name(parse(["figure", "heatmap", *figure, "--strategy", "lora"]))
    assert new == ("heatmap_lora", {})
    assert figure_name(parse(["figure", "figure3", *figure, "--metric", "mIoU"])) == (
        "figure3",
        {"metric": "mIoU"},
    )
    with pytest.raises(SystemExit):
        parse(["figure", "heatmap_", *figure])
    assert "heatmap_<strategy>" in capsys.readouterr().err
