"""Workflow tests: the paper grid's dry-run, config errors, and the demo end to end (reduced).

Each test runs the real `snakemake` on the real Snakefile in a scratch working directory
(`--directory`), with the repository's config/ linked in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from densebench.evaluate.objects import OBJECT_METRICS
from tests.conftest import FIXTURES, REPO

pytestmark = pytest.mark.workflow
BIN = Path(sys.executable).parent


def snakemake_command(workdir: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of snakemake on the repository's Snakefile in workdir."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    cmd = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
    return [*cmd, "--directory", str(workdir), *args], env


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in workdir."""
    cmd, env = snakemake_command(workdir, *args)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run or dry-run."""
    table = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory with the repository's config/ linked in."""
    (tmp_path / "config").symlink_to(REPO / "config")
    return tmp_path


def write_config(workdir: Path, **overrides) -> Path:
    """A config file: the demo config with top-level keys replaced."""
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config.update(overrides)
    path = workdir / "test_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_paper_grid_dry_run_lists_1530_training_jobs(workdir):
    result = snakemake(workdir, "-n", "--quiet", "rules", "reason")
    counts = job_counts(result.stdout + result.stderr)
    assert counts["train"] == predictions(counts) == 1530
    assert counts["convert"] == counts["unpack_raw"] == counts["download_split_list"] == 18
    assert counts["download_raw"] + counts["manual_raw"] == 18
    assert counts["download_weights"] == 17 and counts["score"] == 18
    assert counts["aggregate"] == counts["strategy_tables"] == 1
    assert counts["figure"] == 7 + 5  # seven figures and a heat map per strategy
    # the object metrics of the 8 nuclear and 3 gland datasets with instance labels
    assert counts["convert_instances"] == 11 and counts["predict_with_objects"] == 11 * 17 * 5


def test_unknown_names_fail_before_any_job(workdir):
    config = write_config(workdir, models=["demo_vit_p8", "uni_v9"], strategies=["loraa"])
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "Unknown model 'uni_v9'" in message and "Valid models:" in message
    assert "Unknown strategy 'loraa'" in message and "Did you mean 'lora'" in message
    assert not (workdir / "resources").exists() and not (workdir / "results").exists()


def test_corrected_protocol_and_sliding_window_plan_the_same_grid(workdir):
    config = write_config(
        workdir, protocol="corrected", evaluate={"inference": "sliding_window", "overlap": 0.5}
    )
    dry = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", str(config))
    assert job_counts(dry.stdout + dry.stderr)["train"] == 45


def test_background_exclusion_needs_standard_metrics(workdir):
    config = write_config(workdir, evaluate={"exclude_background": True})
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0
    assert "needs the standard metric definitions" in result.stdout + result.stderr


def test_preflight_reports_every_model_offline_here(workdir):
    # Hermetic: offline is forced (HF_HUB_OFFLINE=1), and should the hub be contacted anyway,
    # the request goes to a closed local port and the detail would say "cannot reach".
    drop = {"HF_TOKEN", "NO_PROXY", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {"PATH": f"{BIN}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    env |= dict.fromkeys(("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"), "http://127.0.0.1:9")
    cmd, _ = snakemake_command(workdir, "--cores", "1", "results/weights/preflight.tsv")
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=120)
    table = pd.read_csv(workdir / "results/weights/preflight.tsv", sep="\t")
    assert len(table) == 17 and set(table["status"]) == {"offline"}
    assert table["detail"].str.contains("HF_HUB_OFFLINE is set").all()
    assert table["detail"].str.contains("login node").all()


def test_missing_manual_drop_stops_before_any_job(workdir):
    config = write_config(
        workdir, datasets=["CoNSeP"], models=["demo_vit_p8"], strategies=["frozen"]
    )
    result = snakemake(workdir, "--configfile", str(config), "--cores", "1", check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "needs a manual download" in message
    assert "consep.zip" in message and "resources/raw/CoNSeP/" in message
    assert not (workdir / "resources").exists() and not (workdir / "results").exists()


def test_invalid_config_value_is_named(workdir):
    config = write_config(workdir, protocol="fancy")
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0 and "fancy" in result.stdout + result.stderr


def edit_yaml(path: Path, edit) -> None:
    """Load a YAML file, apply edit(data) in place, write it back."""
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def predictions(counts: dict[str, int]) -> int:
    """Prediction jobs of a dry run: `predict`, and `predict_with_objects` on a dataset with
    instance labels (the same prediction, also writing the run's object tallies)."""
    return counts.get("predict", 0) + counts.get("predict_with_objects", 0)


def planned(workdir: Path, run: list[str]) -> dict[str, int]:
    """Jobs a dry-run schedules, per rule ({} when there is nothing to do)."""
    dry = snakemake(workdir, *run, "-n", "--quiet", "rules")
    output = dry.stdout + dry.stderr
    return {} if "Nothing to be done" in output else job_counts(output)


def planned_figures(workdir: Path, run: list[str]) -> list[str]:
    """The kinds of the `figure` jobs a dry run plans (read from the rule's message)."""
    dry = snakemake(workdir, *run, "-n").stdout
    return re.findall(r"Rendering the figure (\w+) of the", dry)


def start_detached(workdir: Path, run: list[str]) -> subprocess.Popen:
    """Start snakemake in its own process group (to be killed with everything it runs)."""
    cmd, env = snakemake_command(workdir, *run)
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def kill_when_exists(workdir: Path, run: list[str], path: Path, delay: float) -> None:
    """Run snakemake and SIGKILL it with its jobs once `path` exists (plus a delay), as a node
    failure would; fail if it ended first. Then remove its stale lock (`--unlock`)."""
    proc = start_detached(workdir, run)
    deadline = time.monotonic() + 300
    while not path.exists():
        assert proc.poll() is None, f"snakemake ended before {path} appeared"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(delay)
    assert proc.poll() is None, "snakemake ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    snakemake(workdir, *run, "--unlock")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """The reduced demo (.test/config/config.yaml: 1 dataset x 2 models x 2 strategies, 2 epochs)
    run through Snakemake, on copies of the registries that tests may edit."""
    workdir = tmp_path_factory.mktemp("demo")
    (workdir / "config").symlink_to(REPO / "config")
    registries = {}
    for axis in ("models", "datasets", "strategies"):
        registries[axis] = str(workdir / f"{axis}.yaml")
        shutil.copy(REPO / f"config/{axis}.yaml", registries[axis])
    config = workdir / "test_config.yaml"
    reduced = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config.write_text(yaml.safe_dump(dict(reduced, registries=registries)))
    run = ["--configfile", str(config), "--cores", "2"]
    snakemake(workdir, *run)
    return workdir, run


def test_reduced_demo_end_to_end(demo_run):
    workdir, run = demo_run
    table = pd.read_csv(workdir / "results/tables/results.csv")
    headline = table[table["class"].isna() & ~table["metric"].isin(OBJECT_METRICS)]
    assert len(headline) == 1 * 2 * 2 * 8
    assert len(table) == 1 * 2 * 2 * (8 + 3 + 5 * 3)  # GlaS object metrics; per class 5 metrics
    assert set(table["model"]) == {"demo_vit_p8", "demo_vit_p14_reg4"}
    assert (headline["ci_lower"] <= headline["ci_upper"]).all()
    assert headline["boot_mean"].between(0, 1).all()
    report = workdir / "results/report/reproduced"
    for strategy in ("frozen", "lora"):
        markdown = (report / f"tables/per_strategy/demo_glands/{strategy}.md").read_text()
        assert "Demo ViT/8" in markdown and "Demo ViT/14+reg4" in markdown
        wide = pd.read_csv(report / f"tables/per_strategy/demo_glands/{strategy}.csv")
        assert len(wide) == 2 and "Mean_Dice_ci_lower" in wide.columns
        assert (report / f"tables/per_class/demo_glands/{strategy}.tex").is_file()
    # the same figures and tables as the published source's report (tests/report/
    # test_report_workflow.py), one heat map per strategy, plus what needs our runs
    from tests.report.test_report_workflow import FIGURES, TABLES

    names = [*FIGURES, "heatmap_frozen", "heatmap_lora", "rank_shift"]  # + object metrics
    assert {p.name for p in (report / "figures").iterdir()} == {
        f"{n}.{e}" for n in names for e in ("png", "pdf")
    }
    tables = {*TABLES, "model_cards", "dataset_cards"}
    assert {p.name for p in (report / "tables").iterdir() if p.is_file()} == {
        f"{n}.{e}" for n in tables for e in ("csv", "md", "tex")
    } | {"compute.csv", "compute.md"}  # the compute our runs used (reproduced only)
    paired = pd.read_csv(report / "tables/paired_bootstrap/demo_glands.csv")
    assert len(paired) == 2 + 2  # a pair of models per strategy, a pair of strategies per model
    from PIL import Image

    assert Image.open(report / "figures/figure3.png").size[0] > 500
    run_dir = workdir / "results/runs/demo_glands/demo_vit_p8/lora"
    assert {p.name for p in run_dir.iterdir()} == {
        "best.pt",
        "train_log.csv",
        "provenance.json",
        "confusion.npz",
        "objects.npz",
    }  # fmt: skip  (no last.pt: a finished run keeps what it needs)
    assert planned(workdir, run) == {}  # a second run has nothing to do


def test_descriptive_and_execution_edits_redo_only_what_prints_them(demo_run):
    workdir, run = demo_run

    def describe_model(models):
        models["demo_vit_p8"].update(licence="CC0-1.0", params_m=99.0, notes="renamed upstream")

    edit_yaml(workdir / "models.yaml", describe_model)
    edit_yaml(workdir / "datasets.yaml", lambda d: d["demo_glands"].update(notes="a new note"))
    edit_yaml(workdir / "strategies.yaml", lambda d: d["lora"].update(published="lora_v2"))
    edit_yaml(
        workdir / "test_config.yaml",
        lambda c: c["train"].update(num_workers=1, compile=True, channels_last=False),
    )
    # the model card prints the licence and the size, Figure 4 plots the size, lora's published
    # stem names its exported results file (Data/lora_v2.json): only they
    expected = {"cards": 1, "figure": 1, "export_published": 1, "all": 1, "total": 4}
    assert planned(workdir, run) == expected
    assert planned_figures(workdir, run) == ["figure4"]
    snakemake(workdir, *run)
    assert "CC0-1.0" in (workdir / "results/report/reproduced/tables/model_cards.md").read_text()
    # A display name is printed in the tables and the figure: only they are redone.
    edit_yaml(workdir / "models.yaml", lambda m: m["demo_vit_p8"].update(display_name="ViT-8"))
    redone = planned(workdir, run)
    assert not {"train", "predict", "score", "aggregate"} & set(redone)
    assert {"strategy_tables", "figure", "summaries", "cards"} <= set(redone)
    assert "figure3" in planned_figures(workdir, run)
    snakemake(workdir, *run)
    report = workdir / "results/report/reproduced"
    assert "ViT-8" in (report / "tables/per_strategy/demo_glands/lora.md").read_text()
    assert "ViT-8" in (report / "tables/model_cards.md").read_text()


def test_merged_report_ranks_our_runs_beside_the_published(demo_run):
    workdir, run = demo_run
    drop = workdir / "resources/published"
    drop.mkdir(parents=True, exist_ok=True)
    # each file under the stem the (edited: an earlier test renames lora's) registry gives it
    shipped = yaml.safe_load((REPO / "config/strategies.yaml").read_text())
    edited = yaml.safe_load((workdir / "strategies.yaml").read_text())
    for strategy, record in shipped.items():
        if "published_sha256" not in record:
            continue  # no published results (full fine-tuning)
        source = FIXTURES / f"published/{record['published']}.json"
        shutil.copy(source, drop / f"{edited[strategy]['published']}.json")
    merged = ["report", *run, "--config", "results_source=merged"]
    dry = job_counts(snakemake(workdir, *merged, "-n", "--quiet", "rules").stdout)
    assert not {"train", "predict", "score", "aggregate", "fetch_published"} & set(dry)
    # seven figures (rank_shift from our runs' object metrics) and a heat map per strategy
    assert dry["reproduction"] == 1 and dry["figure"] == 7 + 5
    snakemake(workdir, *merged)
    tables = workdir / "results/report/merged/tables"
    ranks = pd.read_csv(tables / "average_rank.csv").set_index("model")
    assert len(ranks) == 17 + 2 and ranks.loc["demo_vit_p8", "source"] == "reproduced"
    assert ranks.loc["hoptimus_0", "source"] == "published"
    marked = [
        line for line in (tables / "average_rank.md").read_text().splitlines() if "\u2020 |" in line
    ]
    assert len(marked) == 2  # our two models carry the mark, the published 17 do not
    sota = pd.read_csv(tables / "dataset_sota.csv").set_index("dataset")
    assert sota.loc["demo_glands", "source"] == "reproduced" and len(sota) == 18 + 1
    html = (workdir / "results/report/reproduction.html").read_text()
    assert html.startswith("<!doctype html>") and "Demo glands" in html


def test_lora_rank_ablation_at_tiny_scale_shares_the_grids_runs(demo_run):
    workdir, run = demo_run
    reduced = yaml.safe_load((workdir / "test_config.yaml").read_text())
    small = {"datasets": ["demo_glands"], "models": ["demo_vit_p8"]}
    reduced["ablations"] = {"lora_rank": {**small, "strategies": ["lora_r4", "lora", "full"]}}
    config = workdir / "ablation_config.yaml"
    config.write_text(yaml.safe_dump(reduced))
    ablation = ["ablation_lora_rank", "--configfile", str(config), "--cores", "2"]
    counts = planned(workdir, ablation)
    assert counts["train"] == 2 and counts["figure5"] == 1  # LoRA rank 16 is the grid's run
    snakemake(workdir, *ablation)
    scores = pd.read_csv(workdir / "results/ablations/lora_rank/scores.csv")
    assert set(scores["strategy"]) == {"lora_r4", "lora", "full"}
    lora = scores[(scores["strategy"] == "lora") & (scores["metric"] == "Mean_Dice")]
    grid = pd.read_csv(workdir / "results/scores/demo_glands.csv")
    same = grid[(grid["model"] == "demo_vit_p8") & (grid["strategy"] == "lora")]
    assert lora["boot_mean"].tolist() == same[same["metric"] == "Mean_Dice"]["boot_mean"].tolist()
    png = workdir / "results/ablations/lora_rank/figure5.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert planned(workdir, ablation) == {} and planned(workdir, run) == {}


def test_token_similarity_of_the_grids_runs(demo_run):
    workdir = demo_run[0]
    reduced = yaml.safe_load((workdir / "test_config.yaml").read_text())
    reduced["ablations"] = {
        "token_similarity": {
            "datasets": ["demo_glands"],
            "models": ["demo_vit_p8"],
            "strategies": ["frozen", "lora"],
            "images": 3,
        }
    }
    config = workdir / "similarity_config.yaml"
    config.write_text(yaml.safe_dump(reduced))
    target = ["token_similarity", "--configfile", str(config), "--cores", "2"]
    counts = planned(workdir, target)
    assert "train" not in counts and "predict" not in counts  # the grid's runs, reused
    assert counts["token_similarity_run"] == 1
    snakemake(workdir, *target)
    root = workdir / "results/ablations/token_similarity"
    table = pd.read_csv(root / "demo_glands/demo_vit_p8.csv")
    assert table["strategy"].tolist() == ["frozen", "lora"]
    assert table["mean_similarity"].between(-1, 1).all() and (table["images"] == 3).all()
    maps = np.load(root / "demo_glands/demo_vit_p8.npz")
    assert maps["lora"].shape == (4, 8, 8)  # 4 query tokens over the 8 x 8 patch grid (64 px)
    assert np.allclose([maps["lora"][0].flat[0], maps["lora"][-1].flat[-1]], 1.0)  # self
    assert (root / "figure.png").read_bytes()[:4] == b"\x89PNG"


def test_qualitative_figure_of_the_grids_runs(demo_run):
    workdir = demo_run[0]
    reduced = yaml.safe_load((workdir / "test_config.yaml").read_text())
    shown = {"datasets": ["demo_glands"], "models": ["demo_vit_p8"], "images": 2}
    reduced["ablations"] = {"qualitative": {**shown, "strategies": ["frozen", "lora"]}}
    config = workdir / "qualitative_config.yaml"
    config.write_text(yaml.safe_dump(reduced))
    target = ["qualitative", "--configfile", str(config), "--cores", "2"]
    counts = planned(workdir, target)
    assert "train" not in counts and counts["qualitative_run"] == 1  # the grid's runs
    snakemake(workdir, *target)
    root = workdir / "results/ablations/qualitative"
    arrays = np.load(root / "demo_glands.npz")
    assert arrays["image"].shape == (2, 64, 64, 3) and arrays["truth"].shape == (2, 64, 64)
    assert set(arrays.files) == {"image", "truth", "ids", "pred_frozen", "pred_lora"}
    # the figure's predictions are the run's: the same argmax as its confusion matrices count
    confusion = np.load(workdir / "results/runs/demo_glands/demo_vit_p8/lora/confusion.npz")
    counted = confusion["matrices"][:2].sum(axis=1)  # per image, pixels per predicted class
    classes = counted.shape[1]
    drawn = np.stack([np.bincount(p.ravel(), minlength=classes) for p in arrays["pred_lora"]])
    assert np.array_equal(drawn, counted)
    assert (root / "demo_glands.png").read_bytes()[:4] == b"\x89PNG"


def checkpoint_spec(run_dir: Path) -> dict:
    """The run spec a run's best.pt was trained with."""
    import torch

    return torch.load(run_dir / "best.pt", map_location="cpu", weights_only=False)["spec"]


def test_input_size_ablation_runs_beside_the_grid(demo_run):
    workdir, run = demo_run
    reduced = yaml.safe_load((workdir / "test_config.yaml").read_text())
    model = "demo_vit_p14_reg4"
    sizes = {"datasets": ["demo_glands"], "models": [model], "sizes": [32, 96], "upsample": False}
    reduced["ablations"] = {"input_size": sizes}
    config = workdir / "size_config.yaml"
    config.write_text(yaml.safe_dump(reduced))
    target = ["ablation_input_size", "--configfile", str(config), "--cores", "2"]
    assert planned(workdir, target)["train_variant"] == 1  # 72 px images reach 32, not 96
    edit_yaml(config, lambda c: c["ablations"]["input_size"].update(upsample=True))
    counts = planned(workdir, target)
    assert counts["train_variant"] == 2 and counts["predict_variant"] == 2
    assert "train" not in counts and "predict" not in counts  # the grid's runs stay as they are
    snakemake(workdir, *target)
    root = workdir / "results/runs/demo_glands"
    sides = [checkpoint_spec(root / model / f"frozen__resize{s}")["input_size"] for s in (32, 96)]
    assert sides == [28, 84]  # by the patch rule: the multiples of 14 not above S
    scores = pd.read_csv(workdir / "results/ablations/input_size/scores.csv")
    dice = scores[(scores["metric"] == "Mean_Dice") & scores["class"].isna()]
    assert sorted(dice["variant"]) == ["resize32", "resize96"]
    assert dice["boot_mean"].between(0, 1).all()
    assert (workdir / "results/ablations/input_size/figure.png").read_bytes()[:4] == b"\x89PNG"
    confusion = root / model / "frozen__resize96/confusion.npz"
    before = np.load(confusion)["matrices"]
    confusion.unlink()
    counts = planned(workdir, target)
    counts.pop("total")
    assert counts == {
        "predict_variant": 1, "ablation_scores": 1, "input_size_figure": 1,
        "ablation_input_size": 1,
    }  # fmt: skip
    snakemake(workdir, *target)
    assert np.array_equal(np.load(confusion)["matrices"], before)  # the same numbers again
    assert planned(workdir, target) == {} and planned(workdir, run) == {}


def test_training_seeds_are_a_grid_axis_with_their_spread_in_the_report(demo_run):
    workdir, run = demo_run
    reduced = yaml.safe_load((workdir / "test_config.yaml").read_text())
    reduced["train"]["seeds"] = [42, 7]
    config = workdir / "seeds_config.yaml"
    config.write_text(yaml.safe_dump(reduced))
    seeds = ["--configfile", str(config), "--cores", "2"]
    counts = planned(workdir, seeds)
    assert counts["train_variant"] == 4 and counts["seed_spread"] == 1
    assert "train" not in counts and "score" not in counts  # seed 42's runs are the grid's
    snakemake(workdir, *seeds)
    spread = pd.read_csv(workdir / "results/report/reproduced/tables/seed_spread.csv")
    assert len(spread) == 4 and (spread["seeds"] == 2).all()
    grid = pd.read_csv(workdir / "results/tables/results.csv")
    dice = grid[(grid["metric"] == "Mean_Dice") & grid["class"].isna()]
    own = spread.merge(dice, on=["dataset", "model", "strategy"], suffixes=("", "_grid"))
    assert (own["boot_mean"] == own["boot_mean_grid"]).all()  # the CI is the cell's own run's
    runs = workdir / "results/runs/demo_glands/demo_vit_p8"
    assert checkpoint_spec(runs / "lora__seed7")["train"]["seed"] == 7
    losses = [
        pd.read_csv(runs / f / "train_log.csv")["train_loss"] for f in ("lora", "lora__seed7")
    ]
    assert not losses[0].equals(losses[1])  # another seed trains differently
    assert (spread["seeds_sd"] >= 0).all() and (spread["seeds_min"] <= spread["seeds_max"]).all()
    assert "Seed SD" in (workdir / "results/report/reproduced/tables/seed_spread.md").read_text()
    assert planned(workdir, seeds) == {} and planned(workdir, run) == {}


def test_unet_baseline_beside_the_grids_pfms(demo_run):
    workdir, run = demo_run
    reduced = yaml.safe_load((workdir / "test_config.yaml").read_text())
    baseline = {"models": ["demo_unet"], "compare_with": "reproduced"}
    reduced["ablations"] = {"baseline_unet": baseline}
    config = workdir / "baseline_config.yaml"
    config.write_text(yaml.safe_dump(reduced))
    target = ["baseline_unet", "--configfile", str(config), "--cores", "2"]
    counts = planned(workdir, target)
    assert counts["train"] == 1 and predictions(counts) == 1  # the UNet on the grid's dataset
    assert counts["baseline_unet_report"] == 1 and "score" not in counts  # PFMs: the grid's
    snakemake(workdir, *target)
    run_dir = workdir / "results/runs/demo_glands/demo_unet/full"
    parameters = json.loads((run_dir / "provenance.json").read_text())["parameters"]
    assert parameters["trainable"] == parameters["total"] > 0  # from scratch: everything trains
    root = workdir / "results/ablations/baseline_unet"
    table = pd.read_csv(root / "table.csv")
    grid = pd.read_csv(workdir / "results/tables/results.csv")
    dice = grid[(grid["metric"] == "Mean_Dice") & grid["class"].isna()]
    frozen = dice[dice["strategy"] == "frozen"]["boot_mean"]
    row = table.iloc[0]
    assert table["dataset"].tolist() == ["demo_glands"] and row["frozen_pfms"] == 2
    assert row["frozen_best"] == frozen.max()
    assert row["frozen_beaten"] == (frozen < row["boot_mean"]).sum()
    assert "Demo UNet" in (root / "table.md").read_text()
    assert (root / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert planned(workdir, target) == {} and planned(workdir, run) == {}


def test_deleted_prediction_only_repredicts(demo_run):
    workdir, run = demo_run
    run_dir = workdir / "results/runs/demo_glands/demo_vit_p8/lora"
    before = np.load(run_dir / "confusion.npz")["matrices"]
    scores = (workdir / "results/scores/demo_glands.csv").read_text()
    trained = (run_dir / "best.pt").stat().st_mtime_ns
    (run_dir / "confusion.npz").unlink()
    counts = planned(workdir, run)
    upstream = {k: counts.get(k) for k in ("train", "predict", "score", "aggregate")}
    assert upstream == {"train": None, "predict": None, "score": 1, "aggregate": 1}
    assert predictions(counts) == 1
    assert {"source_table", "strategy_tables", "figure", "paired_bootstrap"} <= set(counts)
    assert "cards" not in counts  # the registries feed them, not the results
    snakemake(workdir, *run)
    assert np.array_equal(np.load(run_dir / "confusion.npz")["matrices"], before)
    assert (workdir / "results/scores/demo_glands.csv").read_text() == scores
    assert (run_dir / "best.pt").stat().st_mtime_ns == trained  # never retrained

    # Killed during prediction: the next run only re-predicts, to the same numbers.
    (run_dir / "confusion.npz").unlink()
    log = workdir / "logs/predict/demo_glands/demo_vit_p8/lora.log"
    log.unlink()
    kill_when_exists(workdir, run, log, delay=1.0)
    assert not (run_dir / "confusion.npz").exists()
    assert predictions(planned(workdir, run)) == 1 and "train" not in planned(workdir, run)
    snakemake(workdir, *run)
    assert np.array_equal(np.load(run_dir / "confusion.npz")["matrices"], before)
    assert (workdir / "results/scores/demo_glands.csv").read_text() == scores


def test_gland_object_metrics_beside_the_pixel_metrics_a_deleted_tally_repredicts_one_run(
    demo_run,
):
    workdir, run = demo_run
    table = pd.read_csv(workdir / "results/tables/results.csv")
    objects = table[table["metric"].isin(["Object_F1", "Object_Dice", "Object_Hausdorff"])]
    assert len(objects) == 2 * 2 * 3  # every run of demo_glands, the three GlaS metrics
    assert objects["class"].isna().all() and (objects["ci_lower"] <= objects["ci_upper"]).all()
    headline = table[table["metric"] == "Mean_Dice"]
    assert set(objects["n_images"]) == set(headline["n_images"])  # the same test images
    report = workdir / "results/report/reproduced"
    assert (report / "tables/objects/demo_glands/lora.md").is_file()
    assert (report / "figures/rank_shift.png").read_bytes()[:4] == b"\x89PNG"
    run_dir = workdir / "results/runs/demo_glands/demo_vit_p8/lora"
    before = np.load(run_dir / "objects.npz")["tallies"]
    matrices = np.load(run_dir / "confusion.npz")["matrices"]
    (run_dir / "objects.npz").unlink()
    counts = planned(workdir, run)
    upstream = {k: counts.get(k) for k in ("train", "predict", "predict_with_objects", "score")}
    assert upstream == {"train": None, "predict": None, "predict_with_objects": 1, "score": 1}
    snakemake(workdir, *run)
    assert np.array_equal(np.load(run_dir / "objects.npz")["tallies"], before)
    assert np.array_equal(np.load(run_dir / "confusion.npz")["matrices"], matrices)
    assert planned(workdir, run) == {}


def test_recipe_edit_retrains_those_runs_from_scratch(demo_run):
    workdir, run = demo_run
    run_dir = workdir / "results/runs/demo_glands/demo_vit_p14_reg4/lora"
    # A lora job killed mid-training leaves its resume file...
    (run_dir / "best.pt").unlink()
    kill_when_exists(workdir, run, run_dir / "last.pt", delay=0.0)
    assert (run_dir / "last.pt").exists()
    # ...then the lora recipe changes: both lora runs retrain, nothing else does.
    edit_yaml(workdir / "strategies.yaml", lambda d: d["lora"].update(rank=8))
    counts = planned(workdir, run)
    assert counts["train"] == 2 and predictions(counts) == 2 and counts["score"] == 1
    snakemake(workdir, *run)
    log = (workdir / "logs/train/demo_glands/demo_vit_p14_reg4/lora.log").read_text()
    assert "training from scratch" in log and "resuming" not in log
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["epochs"] == 2 and not (run_dir / "last.pt").exists()
    assert planned(workdir, run) == {}
