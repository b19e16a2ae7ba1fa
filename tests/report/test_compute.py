"""The compute our runs used (densebench.report.compute, `densebench compute`): measured
device-hours of the runs' provenance per model and strategy beside the plan's estimate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from densebench.cli import main
from densebench.report.compute import COLUMNS, compute_markdown, compute_used, read_provenance

H100 = "NVIDIA H100 80GB HBM3"


def provenance(root: Path, dataset: str, model: str, strategy: str, **job) -> Path:
    """A run's provenance.json with the job record `job` (none: written before it)."""
    path = root / dataset / model / strategy / "provenance.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"dataset": dataset, "model": model, "strategy": strategy, "epochs": 2, **job}
    path.write_text(json.dumps(record))
    return path


def shared_job(wall_s: float, runs: int, device: str = H100) -> dict:
    """The job record of a run trained by a job of `runs` runs (train.loop.job_record)."""
    name = "frozen+cnn_adapter+transformer_adapter" if runs > 1 else None
    return {
        "train_wall_s": wall_s,
        "shared_job": name,
        "shared_runs": runs,
        "device_hours": wall_s / runs / 3600,
        "device": device,
    }


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Two datasets: uni_v1's frozen-encoder runs shared a job on each, its LoRA trained alone
    (one on another GPU, one written before the job record), phikon's frozen run alone."""
    paths = []
    for dataset, wall in (("GlaS", 3600.0), ("BCSS", 7200.0)):
        for strategy in ("frozen", "cnn_adapter", "transformer_adapter"):
            paths.append(provenance(tmp_path, dataset, "uni_v1", strategy, **shared_job(wall, 3)))
    paths.append(provenance(tmp_path, "GlaS", "uni_v1", "lora", **shared_job(1800.0, 1)))
    old = provenance(tmp_path, "BCSS", "uni_v1", "lora", device="NVIDIA A100-SXM4-80GB")
    paths += [old, provenance(tmp_path, "GlaS", "phikon", "frozen", **shared_job(900.0, 1, "cpu"))]
    return paths


ESTIMATE = [
    {"model": "uni_v1", "strategy": "frozen", "gpu_h": 1.0, "shared_gpu_h": 0.5},
    {"model": "uni_v1", "strategy": "lora", "gpu_h": 2.0, "shared_gpu_h": 2.0},
    {"model": "uni_v1", "strategy": "cnn_adapter", "gpu_h": 2.0, "shared_gpu_h": 1.0},
    {"model": "uni_v1", "strategy": "transformer_adapter", "gpu_h": 2.0, "shared_gpu_h": 1.0},
]


def test_measured_device_hours_are_summed_per_model_and_strategy(runs):
    table = compute_used(read_provenance(runs), ESTIMATE).set_index(["model", "strategy"])
    assert list(table.index) == [
        *((e["model"], e["strategy"]) for e in ESTIMATE),
        ("phikon", "frozen"),  # provenance without an estimate: after, empty estimate
    ]
    frozen = table.loc[("uni_v1", "frozen")]
    # a shared job's wall time counts once over its three runs: (1 h + 2 h) / 3
    assert frozen["runs"] == frozen["measured"] == frozen["shared"] == 2
    assert frozen["device_hours"] == pytest.approx(1.0)
    assert frozen["devices"] == H100
    assert (frozen["estimated_gpu_hours"], frozen["estimated_gpu_hours_shared"]) == (1.0, 0.5)
    lora = table.loc[("uni_v1", "lora")]
    assert (lora["runs"], lora["measured"], lora["shared"]) == (2, 1, 0)
    assert lora["device_hours"] == pytest.approx(0.5)  # the old record counts as a run only
    assert lora["devices"] == f"NVIDIA A100-SXM4-80GB; {H100}"
    phikon = table.loc[("phikon", "frozen")]
    assert phikon["device_hours"] == pytest.approx(0.25) and phikon["devices"] == "cpu"
    assert math.isnan(phikon["estimated_gpu_hours"])
    total = table["device_hours"].sum()
    assert total == pytest.approx(3 * 1.0 + 0.5 + 0.25)  # every job's wall time, once


def test_a_pair_without_measured_runs_has_no_device_hours(tmp_path):
    old = provenance(tmp_path, "GlaS", "uni_v1", "dora")
    table = compute_used(read_provenance([old]), [])
    assert table.loc[0, "runs"] == 1 and table.loc[0, "measured"] == 0
    assert math.isnan(table.loc[0, "device_hours"])
    assert "| uni_v1 | dora | 1 | 0 | 0 | n/a | n/a | n/a | n/a |" in compute_markdown(table)
    demo = provenance(tmp_path, "demo_glands", "demo_vit_p8", "lora", **shared_job(4.9, 1, "cpu"))
    estimate = [{"model": "demo_vit_p8", "strategy": "lora", "gpu_h": 3.3e-9, "shared_gpu_h": 0}]
    tiny = compute_markdown(compute_used(read_provenance([demo]), estimate))
    assert "| demo_vit_p8 | lora | 1 | 1 | 0 | 0.0014 | cpu | 3.3e-09 | 0.00 |" in tiny


def test_a_file_that_is_not_a_runs_provenance_is_refused(tmp_path):
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps({"dataset": "GlaS", "model": "uni_v1"}))
    with pytest.raises(ValueError, match="no strategy"):
        read_provenance([path])


def test_the_command_writes_the_csv_and_the_markdown_with_totals(runs, tmp_path):
    stem = tmp_path / "out/compute"
    argv = ["compute", "--estimate", json.dumps(ESTIMATE), "--out", str(stem)]
    assert main([*argv, *map(str, runs)]) == 0
    csv = pd.read_csv(stem.with_suffix(".csv"))
    assert tuple(csv.columns) == COLUMNS and len(csv) == 5
    assert csv["device_hours"].sum() == pytest.approx(3.75)
    md = stem.with_suffix(".md").read_text()
    assert "| uni_v1 | frozen | 2 | 2 | 2 | 1.00 | NVIDIA H100 80GB HBM3 | 1.00 | 0.50 |" in md
    # per strategy over the models, then every run
    assert "| all | frozen | 3 | 3 | 2 | 1.25 | NVIDIA H100 80GB HBM3, cpu | 1.00 | 0.50 |" in md
    assert "| all | all | 9 | 8 | 6 | 3.75 |" in md
    assert md.rstrip().splitlines()[-3].startswith("| all | all |")


def test_the_plan_estimates_the_reports_runs_alone_and_shared(demo_config, registries):
    from densebench.plan import Plan, run_folder
    from densebench.resources import train_gpu_hours

    plan = Plan(demo_config, registries)
    runs = plan.report.compute_runs()
    assert runs == plan.seed_runs()  # no baseline joins the demo's tables by default
    files = plan.report.compute_run_files()
    assert files == [f"{run_folder(*run)}/provenance.json" for run in runs]
    assert files[0] == "results/runs/demo_nuclei/demo_vit_p8/frozen/provenance.json"
    assert len(files) == 3 * 3 * 5
    estimate = plan.report.compute_estimate()
    pairs = [(e["model"], e["strategy"]) for e in estimate]
    assert pairs == [(m, s) for m in plan.models for s in plan.strategies]
    hours = train_gpu_hours(plan, runs)
    for entry in estimate:
        mine = [hours[r] for r in runs if (r[1], r[2]) == (entry["model"], entry["strategy"])]
        assert entry["gpu_h"] == pytest.approx(sum(h[0] for h in mine), rel=1e-5)
        assert entry["shared_gpu_h"] == pytest.approx(sum(h[1] for h in mine), rel=1e-5)
        if entry["strategy"] in ("lora", "dora"):
            assert entry["shared_gpu_h"] == entry["gpu_h"]
        else:
            assert entry["shared_gpu_h"] < entry["gpu_h"]
    reproduced = plan.report.report_files("reproduced")
    stem = "results/report/reproduced/tables/compute"
    assert {f"{stem}.csv", f"{stem}.md"} <= set(reproduced) <= set(plan.final_outputs())
    for source in ("published", "merged"):
        assert not any("compute" in f for f in plan.report.report_files(source))


def test_the_table_sums_the_results_tables_runs_not_further_seeds(demo_config, registries):
    from densebench.plan import Plan

    # as the report's other tables: switching seeds on and off redoes nothing of it
    seeded = Plan({**demo_config, "train": {**demo_config["train"], "seeds": [42, 7]}}, registries)
    assert len(seeded.seed_runs()) == 2 * len(seeded.report.compute_runs())
    assert seeded.report.compute_runs() == Plan(demo_config, registries).report.compute_runs()


def test_the_baseline_runs_join_where_the_baseline_joins_the_tables(demo_config, registries):
    from densebench.plan import Plan

    ablations = {**demo_config["ablations"]}
    ablations["baseline_unet"] = {**ablations["baseline_unet"], "enabled": True}
    plan = Plan({**demo_config, "ablations": ablations}, registries)
    unet = [r for r in plan.report.compute_runs() if r[1] == "demo_unet"]
    assert unet and all(r[3] == "" for r in unet)
    assert ("demo_unet", unet[0][2]) in {
        (e["model"], e["strategy"]) for e in plan.report.compute_estimate()
    }


@pytest.mark.workflow
def test_the_demo_schedules_the_compute_table_once_from_every_runs_provenance(tmp_path):
    from tests.test_workflow import job_counts, snakemake

    (tmp_path / "config").symlink_to(Path(__file__).parents[2] / "config")
    dry = snakemake(tmp_path, "--configfile", "config/demo.yaml", "-n", "-p", "all")
    output = dry.stdout + dry.stderr
    assert job_counts(output)["compute_used"] == 1
    command = next(line for line in output.splitlines() if "densebench compute " in line)
    assert command.count("provenance.json") == 3 * 3 * 5
    assert "results/report/reproduced/tables/compute" in command
