"""The `densebench` CLI: argument handling and clear errors."""

from __future__ import annotations

import json

import pytest

from densebench.cli import json_arg, main, spec_arg


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
    import densebench.cli

    def chained(args):
        """Fail after 30 chained causes, with a 100-line message."""
        error = None
        for i in range(30):
            try:
                raise OSError(f"cause {i}") from error
            except OSError as caught:
                error = caught
        raise ValueError("\n".join(f"line {i}" for i in range(100))) from error

    monkeypatch.setattr(densebench.cli, "cmd_manual_check", chained)
    assert main(["manual-check", "--dataset", "X", "--card", "{}", "--raw", "r"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 + 40 + 1 + 40 + 1
    assert lines[0].endswith("earlier traceback lines cut)") and "OSError: cause 29" in lines
    assert lines[41:43] == ["ValueError", "densebench: error: line 0"]
    assert lines[-1] == "... (60 more lines cut)"
