"""The walkthroughs of CONTRIBUTING.md, followed step by step on copies of the registries.

One scratch working directory (module fixture) gets the guide's example records, read from the
guide's YAML blocks, appended to copies of the three registries, and as its `config/config.yaml`
the reduced demo (.test/config/config.yaml) with the grid [demo_glands, demo_crypts] x
[tiny_vit] x [frozen] and one epoch: it is dry-run, then run once through Snakemake, as the
guide's "scratch working directory" says. The tests read that run and dry-run variants of its
config (`--configfile` overlays). `densebench params` and `densebench convert` run in-process
through `densebench.cli.main`, the function the console script calls, so torch is imported once.
Expectations are independent of the code: LoRA sizes from 6·r·D / 8·r·D per block, a DINOv2
parameter count from its layer shapes, the fix lists of three files against each other.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from densebench.evaluate.objects import METRICS, OBJECT_METRICS
from tests.conftest import REPO
from tests.test_workflow import planned, predictions, snakemake

pytestmark = pytest.mark.workflow

GUIDE = REPO / "CONTRIBUTING.md"
AXES = ("models", "datasets", "strategies")
GUIDE_RECORDS = {
    "models": ("tiny_vit", "tiny_dinov2"),
    "datasets": ("demo_crypts",),
    "strategies": ("lora_r2",),
}
"""The guide's example records, per registry."""
GRID = {
    "datasets": ["demo_glands", "demo_crypts"],
    "models": ["tiny_vit"],
    "strategies": ["frozen"],
}
"""What a registry edit outside the grid plans: the report rules that print display names."""


def guide_record(name: str) -> str:
    """The YAML block of the guide that defines `name` (text, anchors unresolved)."""
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    found = [b for b in blocks if b.startswith(f"{name}:\n")]
    assert len(found) == 1, f"CONTRIBUTING.md should hold one yaml block defining {name}"
    return found[0]


def parsed_record(scratch, axis: str, name: str) -> dict:
    """A guide record as the registry copy holds it (anchors resolved)."""
    return yaml.safe_load(Path(scratch.registries[axis]).read_text())[name]


def overlay(scratch, name: str, **keys) -> list[str]:
    """Arguments of a dry-run with config keys overridden (a --configfile overlay)."""
    path = scratch.workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(keys))
    return ["--configfile", str(path)]


def full_config(scratch, name: str, **keys) -> Path:
    """A complete config file: the scratch config with top-level keys replaced."""
    config = yaml.safe_load(scratch.config.read_text())
    config.update(keys)
    path = scratch.workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def densebench(capsys, *argv: str) -> tuple[int, str, str]:
    """`densebench <argv>` in-process: (exit status, stdout, stderr)."""
    from densebench.cli import main

    capsys.readouterr()
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def params(capsys, config: Path, model: str, strategy: str, dataset: str = "demo_glands") -> dict:
    """The JSON line of `densebench params` for one cell."""
    argv = ["params", "--model", model, "--strategy", strategy, "--dataset", dataset]
    status, out, err = densebench(capsys, *argv, "--config", str(config))
    assert status == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> SimpleNamespace:
    """The guide's scratch working directory, its dry-run, its run and the dry-run after it."""
    workdir = tmp_path_factory.mktemp("contributing")
    registries = {}
    for axis in AXES:
        text = (REPO / f"config/{axis}.yaml").read_text().rstrip("\n") + "\n"
        text += "".join(guide_record(name) for name in GUIDE_RECORDS[axis])
        registries[axis] = str(workdir / f"{axis}.yaml")
        Path(registries[axis]).write_text(text)
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config.update(GRID, registries=registries)
    config["train"]["epochs"] = 1
    (workdir / "config").mkdir()
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    plan = planned(workdir, [])
    snakemake(workdir, "--cores", "2")
    return SimpleNamespace(
        workdir=workdir,
        config=workdir / "config/config.yaml",
        registries=registries,
        plan=plan,
        replan=planned(workdir, []),
    )


# ---- (a) a model ------------------------------------------------------------------------------


def test_new_timm_record_is_validated_as_the_snakefile_does(scratch):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(REPO / "workflow/schemas/models.schema.yaml")
    from densebench.registry import load_yaml, records

    models = records(load_yaml(Path(scratch.registries["models"])))
    validate(models, schema=schema)  # what workflow/rules/common.smk runs on every registry
    for broken in ({"adapter_targets": None}, {"family": "keras"}):
        record = dict(models["tiny_vit"], **broken)
        record = {k: v for k, v in record.items() if v is not None}
        with pytest.raises(WorkflowError, match=r"adapter_targets|keras"):
            validate({"tiny_vit": record}, schema=schema)


def test_new_timm_model_dry_run_and_one_epoch_run(scratch):
    plan = scratch.plan
    assert plan["train"] == predictions(plan) == 2 and "download_weights" not in plan  # random init
    table = pd.read_csv(scratch.workdir / "results/tables/results.csv")
    rows = table[table["model"] == "tiny_vit"]
    assert set(rows["dataset"]) == {"demo_glands", "demo_crypts"}
    for _, part in rows.groupby("dataset"):
        headline = part[part["class"].isna() & ~part["metric"].isin(OBJECT_METRICS)]
        assert len(headline) == 8 and len(part) == 8 + 3 + 5 * 3  # GlaS object metrics, 3 classes
        assert headline["boot_mean"].between(0, 1).all()
    run_dir = scratch.workdir / "results/runs/demo_glands/tiny_vit/frozen"
    assert json.loads((run_dir / "provenance.json").read_text())["epochs"] == 1
    assert len(pd.read_csv(run_dir / "train_log.csv")) == 1
    assert scratch.replan == {}  # a second run has nothing to do


def test_token_layout_mismatch_is_named_by_params(scratch, tmp_path, capsys):
    models = yaml.safe_load(Path(scratch.registries["models"]).read_text())
    models["tiny_vit"]["embed_dim"] = 48  # the kwargs build 32
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(models))
    registries = dict(scratch.registries, models=str(path))
    config = full_config(scratch, "wrong_layout", registries=registries)
    argv = ["params", "--model", "tiny_vit", "--strategy", "frozen", "--dataset", "demo_glands"]
    status, _, err = densebench(capsys, *argv, "--config", str(config))
    assert status == 1 and "registry says embed_dim=48, built 32" in err


def dinov2_encoder_parameters(dim: int, depth: int, image: int, patch: int, mlp: int) -> int:
    """Parameters of a DINOv2 encoder from its layer shapes (independent of transformers)."""
    hidden = mlp * dim
    embeddings = 2 * dim + ((image // patch) ** 2 + 1) * dim + 3 * patch * patch * dim + dim
    block = 2 * 2 * dim + 4 * (dim * dim + dim) + 2 * dim + (dim * hidden + hidden)
    block += hidden * dim + dim  # 2 norms, q k v o, 2 layer scales, MLP in, MLP out
    return embeddings + depth * block + 2 * dim  # + final norm


def test_new_transformers_model_builds_on_meta_without_weights(scratch, capsys):
    record = parsed_record(scratch, "models", "tiny_dinov2")
    kw = record["kwargs"]
    dim, depth = kw["hidden_size"], kw["num_hidden_layers"]
    frozen = params(capsys, scratch.config, "tiny_dinov2", "frozen")
    expected = dinov2_encoder_parameters(
        dim, depth, kw["image_size"], kw["patch_size"], kw["mlp_ratio"]
    )
    assert frozen["total"] - frozen["trainable"] == expected
    # Under `paper`, LoRA does not reach the transformers family...
    lora = params(capsys, scratch.config, "tiny_dinov2", "lora")
    assert lora["adapted_modules"] == 0 and lora["trainable"] == frozen["trainable"]
    # ...with lora_all_families every adapter_targets module (q, k, v, o per block) is adapted.
    fixed = full_config(scratch, "all_families", fixes={"lora_all_families": True})
    lora = params(capsys, fixed, "tiny_dinov2", "lora")
    rank = parsed_record(scratch, "strategies", "lora")["rank"]
    assert lora["adapted_modules"] == 4 * depth
    assert lora["trainable"] - frozen["trainable"] == 8 * rank * dim * depth
    # The dry-run plans its weights snapshot (hf_repo), then its run.
    plan = planned(scratch.workdir, overlay(scratch, "dinov2", models=["tiny_dinov2"]))
    assert plan["download_weights"] == 1 and plan["train"] == 2


def test_adding_records_outside_the_grid_redoes_nothing(scratch):
    models = Path(scratch.registries["models"])
    text = models.read_text()
    models.write_text(text + guide_record("tiny_vit").replace("tiny_vit:", "tiny_vit_b:", 1))
    try:
        assert planned(scratch.workdir, []) == {}
    finally:
        models.write_text(text)
    assert planned(scratch.workdir, []) == {}


# ---- (b) a dataset ----------------------------------------------------------------------------


def test_new_synthetic_dataset_dry_run_and_one_epoch_run(scratch):
    from densebench.data.store import DatasetStore

    assert scratch.plan["synthesize_raw"] == scratch.plan["convert"] == 2
    card = parsed_record(scratch, "datasets", "demo_crypts")
    store = DatasetStore(scratch.workdir / "resources/datasets/demo_crypts.zarr")
    assert len(store.group.attrs["samples"]) == card["num_images"]
    table = pd.read_csv(scratch.workdir / "results/tables/results.csv")
    objects = len(METRICS[card["instance_labels"]])  # the guide's card has gland instances
    assert (table["dataset"] == "demo_crypts").sum() == 8 + objects + 5 * len(card["classes"])


def test_card_with_an_existing_converter_converts_its_raw_layout_fixture(tmp_path, capsys):
    from snakemake.utils import validate

    from densebench.data.converters import converter_names
    from densebench.data.store import DatasetStore
    from densebench.registry import load_yaml, records
    from tests.data.raw_layouts import GlaS as layout

    # A new card (another release of GlaS, same layout) in a copy of the registry.
    cards = records(load_yaml(REPO / "config/datasets.yaml"))
    card = dict(cards["GlaS"], display_name="GlaS rescan", notes="same layout as GlaS")
    validate({"GlaS_rescan": card}, schema=str(REPO / "workflow/schemas/datasets.schema.yaml"))
    assert card["converter"] in converter_names()  # registered by its module
    # The guide's check: the fixture tree, the card as JSON, `densebench convert`.
    layout.make_raw(tmp_path / "raw", card)
    convert = ["convert", "--dataset", "GlaS_rescan", "--raw", str(tmp_path / "raw")]
    convert += ["--split-policy", "official", "--seed", "42", "--fractions", "0.7", "0.2", "0.1"]
    (tmp_path / "full.json").write_text(json.dumps(card))
    status, _, err = densebench(
        capsys, *convert, "--card", f"@{tmp_path / 'full.json'}", "--out", str(tmp_path / "a.zarr")
    )
    assert status == 1 and "num_images" in err  # the store refuses another count
    card.pop("num_images")
    (tmp_path / "card.json").write_text(json.dumps(card))
    status, _, err = densebench(
        capsys, *convert, "--card", f"@{tmp_path / 'card.json'}", "--out", str(tmp_path / "b.zarr")
    )
    assert status == 0, err
    samples = DatasetStore(tmp_path / "b.zarr").group.attrs["samples"]
    assert len(samples) == sum(len(images) for images in layout.IMAGES.values())
    test = {s["id"] for s in samples if s["split"] == "test"}
    assert test == {stem for split in ("test_a", "test_b") for stem, *_ in layout.IMAGES[split]}


# ---- (c) a strategy ---------------------------------------------------------------------------


def test_new_strategy_adds_its_runs_and_its_lora_parameters(scratch, capsys):
    plan = planned(scratch.workdir, overlay(scratch, "r2", strategies=["frozen", "lora_r2"]))
    assert plan["train"] == predictions(plan) == 2  # the lora_r2 cells; frozen is done
    assert "convert" not in plan
    kw = parsed_record(scratch, "models", "tiny_vit")["kwargs"]
    dim, depth = kw["embed_dim"], kw["depth"]
    small = parsed_record(scratch, "strategies", "lora_r2")["rank"]
    large = parsed_record(scratch, "strategies", "lora")["rank"]
    count = {
        s: params(capsys, scratch.config, "tiny_vit", s) for s in ("frozen", "lora_r2", "lora")
    }
    assert count["lora_r2"]["adapted_modules"] == count["lora"]["adapted_modules"] == 2 * depth
    # timm attention: qkv (D -> 3D) and proj (D -> D) get r(D + 3D) + r(D + D) = 6·r·D per block
    assert count["lora_r2"]["trainable"] - count["frozen"]["trainable"] == 6 * small * dim * depth
    lora_difference = count["lora"]["trainable"] - count["lora_r2"]["trainable"]
    assert lora_difference == 6 * (large - small) * dim * depth


# ---- (d) a figure or table --------------------------------------------------------------------


def subcommands() -> set[str]:
    """The subcommands of the `densebench` command line."""
    from densebench.cli import build_parser

    actions = build_parser()._actions
    return {n for a in actions if isinstance(a, argparse._SubParsersAction) for n in a.choices}


def test_every_report_rule_is_a_target_and_calls_a_densebench_command(scratch):
    text = "".join((REPO / f"workflow/rules/{n}.smk").read_text() for n in ("report", "figures"))
    rules = re.findall(r"^rule (\w+):", text, re.MULTILINE)
    # reachable from `all` (final_outputs) or from the `report` target of the merged source
    merged = planned(scratch.workdir, ["report", "--config", "results_source=merged"])
    assert rules and set(rules) <= set(scratch.plan) | set(merged)
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        called = set(re.findall(r'"densebench ([a-z0-9-]+)', smk.read_text()))
        assert called <= subcommands(), smk.name


def test_an_existing_figure_is_planned_by_its_target(scratch):
    figure = "results/report/reproduced/figures/figure3.pdf"
    assert planned(scratch.workdir, [figure]) == {}
    assert planned(scratch.workdir, [figure, "--forcerun", "figure"]) == {"figure": 1, "total": 1}


# ---- (e) a fix --------------------------------------------------------------------------------


def test_every_fix_is_in_the_schema_and_the_config_readme():
    from densebench.fixes import FIXES

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    switches = schema["properties"]["fixes"]["properties"]
    assert set(switches) == set(FIXES)
    assert all(s == {"type": ["boolean", "null"], "default": None} for s in switches.values())
    readme = (REPO / "config/README.md").read_text()
    section = readme.split("## Fixes")[1].split("\n## ")[0]
    table = dict(re.findall(r"^\| `(\w+)` \| (\w+) \|", section, re.MULTILINE))
    assert table == {name: stage for name, (stage, _) in FIXES.items()}


def test_toggling_a_fix_reruns_its_stage_and_what_follows(scratch):
    from densebench.fixes import FIXES

    first = {}
    for name, (stage, _) in FIXES.items():
        first.setdefault(stage, name)
    redone = {"train": {"train", "predict", "score"}, "predict": {"predict", "score"}}
    for stage, name in first.items():
        plan = planned(scratch.workdir, overlay(scratch, name, fixes={name: True}))
        plan = {**plan, "predict": predictions(plan)}  # with or without the object tallies
        stages = {rule for rule in ("train", "predict", "score") if plan.get(rule)}
        assert stages == redone.get(stage, {"score"}), name
        assert all(plan[rule] == 2 for rule in stages), name


def test_adding_a_fix_redoes_nothing_until_it_is_switched_on(scratch, monkeypatch):
    from densebench.config import load_config, registry_path
    from densebench.fixes import FIXES
    from densebench.identity import prediction_identity, training_identity
    from densebench.registry import Registries
    from densebench.spec import build_run_spec

    config = load_config(scratch.config)
    registries = Registries.load(*(registry_path(config, axis) for axis in AXES))

    def identities(**fixes) -> tuple[dict, dict]:
        spec = build_run_spec(
            dict(config, fixes=fixes), "demo_glands", "tiny_vit", "frozen", registries
        )
        return training_identity(spec), prediction_identity(spec)

    trained, predicted = identities()
    monkeypatch.setitem(FIXES, "example_train_fix", ("train", "an example, off under paper"))
    assert identities() == (trained, predicted)  # off: no run is redone
    on = identities(example_train_fix=True)
    assert on[0] != trained and on[1] == predicted
    monkeypatch.delitem(FIXES, "example_train_fix")
    monkeypatch.setitem(FIXES, "example_predict_fix", ("predict", "an example"))
    assert identities() == (trained, predicted)
    on = identities(example_predict_fix=True)
    assert on[0] == trained and on[1] != predicted


# ---- the guide itself -------------------------------------------------------------------------


def test_every_file_and_name_the_guide_points_at_exists():
    text = GUIDE.read_text()
    spans = set(re.findall(r"`([^`\n]+)`", text))
    outputs = ("results/", "resources/", "logs/", "/")
    paths = {
        s
        for s in spans
        if re.fullmatch(r"[\w.\-/]+", s)
        and ("/" in s or re.fullmatch(r"[A-Z]+\.md", s))
        and not s.startswith(outputs)
    }
    assert len(paths) > 30
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"CONTRIBUTING.md names files that do not exist: {missing}"
    # "`NAME` in `file`", "`NAME` (`file`" and "`NAME` of `file`": the name is in the file.
    pattern = r"`(\w+)(?:\(\))?`\s+(?:in|of|\()\s*`([\w.\-/]+\.\w+)`"
    claims = re.findall(pattern, text)
    assert len(claims) > 10
    absent = [(n, f) for n, f in claims if n not in (REPO / f).read_text()]
    assert not absent, f"CONTRIBUTING.md places names in files that do not hold them: {absent}"
