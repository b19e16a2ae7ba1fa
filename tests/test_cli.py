"""The `densebench` CLI: argument handling and clear errors."""

from __future__ import annotations

import json

import pytest

from densebench.cli import json_arg, main


def test_json_argument_from_text_or_file(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"a": 1}')
    assert json_arg('{"a": 1}') == json_arg(f"@{path}") == {"a": 1}


def test_params_prints_trainable_and_total(capsys):
    assert main(["params", "--model", "demo_vit_p8", "--strategy", "lora"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["model"] == "demo_vit_p8" and 0 < counts["trainable"] < counts["total"]


def test_params_rejects_unknown_model(capsys):
    assert main(["params", "--model", "vit_enormous", "--strategy", "lora"]) == 1
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
