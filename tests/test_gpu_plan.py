"""GPU classes per job (densebench.gpu_plan): the smallest class holding the memory
model's estimate, activation checkpointing exactly where needed, retries that escalate, and a
plan that stops on a run no class holds."""

from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest
import yaml

from densebench import memory
from densebench.config import ROOT, load_config
from densebench.gpu_plan import PlanError, check_gpu_fit, gpu_classes, gpu_plan, retry_note
from densebench.resources import job_resources
from densebench.spec import build_run_spec
from tests.conftest import REPO
from tests.test_workflow import snakemake, snakemake_command

SITE = {
    "gpus": [
        {"name": "a40-48g", "memory_gb": 48, "constraint": "a40"},
        {"name": "h100-80g", "memory_gb": 80, "gpu_model": "h100"},
        {"name": "h200-141g", "memory_gb": 141, "gres": "gpu:h200:1"},
    ]
}


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return load_config(ROOT / "config/config.yaml")


def spec_of(config, registries, model, strategy, dataset="RINGS", checkpointing="auto", **train):
    config = {**config, "train": {**config["train"], "grad_checkpointing": checkpointing, **train}}
    return build_run_spec(config, dataset, model, strategy, registries)


def smallest_holding(gb: float) -> str:
    """The name of the first site class with at least gb of memory."""
    return next(c["name"] for c in SITE["gpus"] if c["memory_gb"] >= gb)


@pytest.mark.parametrize(
    ("model", "strategy"),
    [
        ("uni_v1", "frozen"),
        ("uni_v1", "lora"),
        ("hoptimus_0", "lora"),
        ("gigapath", "full"),
        ("midnight12k", "transformer_adapter"),
        ("virchow_v2", "dora"),
    ],
)
def test_auto_takes_the_smallest_class_and_checkpoints_only_where_needed(
    paper_config, registries, model, strategy
):
    spec = spec_of(paper_config, registries, model, strategy)
    with_ckpt = memory.estimate(spec, "train", True).gb
    without = memory.estimate(spec, "train", False).gb
    plan = gpu_plan(spec, "train", 1, SITE)
    assert plan.gpu_class.name == smallest_holding(with_ckpt)
    assert plan.checkpointing == (without > plan.gpu_class.memory_gb)
    assert plan.estimate_gb == pytest.approx(with_ckpt if plan.checkpointing else without)
    assert plan.estimate_gb <= plan.gpu_class.memory_gb


def test_the_grid_has_cells_on_every_side_of_the_80_gb_line(paper_config, registries):
    one_class = {"gpus": [{"name": "h100-80g", "memory_gb": 80}]}
    small = gpu_plan(spec_of(paper_config, registries, "uni_v1", "lora"), "train", 1, one_class)
    large = gpu_plan(spec_of(paper_config, registries, "hoptimus_0", "lora"), "train", 1, one_class)
    assert not small.checkpointing and large.checkpointing
    assert "with checkpointing" in large.note() and large.note().startswith("1 GPU h100-80g: est.")


def test_forced_settings_win_over_auto(paper_config, registries):
    on = gpu_plan(spec_of(paper_config, registries, "uni_v1", "lora", checkpointing=True), "train")
    off_spec = spec_of(paper_config, registries, "hoptimus_0", "lora", checkpointing=False)
    off = gpu_plan(off_spec, "train", 1, SITE)
    assert on.checkpointing and not off.checkpointing
    assert off.gpu_class.name == smallest_holding(memory.estimate(off_spec, "train", False).gb)


def test_retries_turn_checkpointing_on_then_ask_for_the_next_class(paper_config, registries):
    spec = spec_of(paper_config, registries, "uni_v1", "lora")
    first, second, third, fourth = (gpu_plan(spec, "train", a, SITE) for a in (1, 2, 3, 4))
    assert not first.checkpointing and second.checkpointing
    assert first.gpu_class == second.gpu_class
    names = [c["name"] for c in SITE["gpus"]]
    assert names.index(third.gpu_class.name) == names.index(second.gpu_class.name) + 1
    assert fourth.gpu_class.name == names[-1]  # never past the largest
    assert "turns activation checkpointing on" in retry_note(spec, "train", 1, SITE)
    assert third.gpu_class.name in retry_note(spec, "train", 2, SITE)
    # prediction never checkpoints: its retries move up at once
    p1, p2 = (gpu_plan(spec, "predict", a, SITE) for a in (1, 2))
    assert (
        not p1.checkpointing
        and names.index(p2.gpu_class.name) == names.index(p1.gpu_class.name) + 1
    )


def test_each_class_is_requested_the_way_the_site_says(paper_config, registries):
    fractions = paper_config["data"]["split_fractions"]
    card = registries.datasets["RINGS"]
    requests = {}
    for attempt in (1, 2, 3, 4):
        spec = spec_of(paper_config, registries, "lunit_vits8", "frozen")
        job = job_resources(spec, card, fractions, "predict", attempt, SITE)
        requests[job.plan.gpu_class.name] = (job.gpu, job.gpu_model, job.gres, job.constraint)
    assert requests["a40-48g"] == (1, None, None, "a40")
    assert requests["h100-80g"] == (1, "h100", None, None)
    assert requests["h200-141g"] == (0, None, "gpu:h200:1", None)  # the gres carries the count


def test_a_run_no_class_holds_stops_the_plan_naming_it(paper_config, registries):
    spec = spec_of(paper_config, registries, "gigapath", "full", input_size=1984)
    small = spec_of(paper_config, registries, "lunit_vits8", "frozen")
    need = max(memory.estimate(small, stage, False).gb for stage in ("train", "predict"))
    site = {"gpus": [{"name": "card", "memory_gb": round(need + 1)}]}
    with pytest.raises(PlanError) as error:
        check_gpu_fit([spec, small], site)
    text = str(error.value)
    assert "RINGS / gigapath / full (S = 1984)" in text
    assert f"card ({round(need + 1)} GB)" in text
    assert "lunit_vits8" not in text  # only the runs that do not fit
    assert "Remedy" in text and "resources.gpus" in text


def test_demo_models_and_cpu_sites_get_no_class(demo_config, registries):
    spec = build_run_spec(demo_config, "demo_glands", "demo_vit_p14_reg4", "lora", registries)
    assert gpu_plan(spec, "train").gpu_class is None
    assert gpu_plan(spec, "train", 1, {"gpu": "always"}).gpu_class.name == "gpu-80g"
    forced = dataclasses.replace(
        spec,
        train=dataclasses.replace(
            spec.train,
            execution=dataclasses.replace(spec.train.execution, grad_checkpointing=True),
        ),
    )
    assert gpu_plan(forced, "train", 1, {"gpu": "never"}).checkpointing


def test_bad_class_lists_are_refused():
    with pytest.raises(ValueError, match="smallest first"):
        gpu_classes({"gpus": [{"name": "b", "memory_gb": 80}, {"name": "a", "memory_gb": 40}]})
    with pytest.raises(ValueError, match="at most one of"):
        gpu_classes({"gpus": [{"name": "b", "memory_gb": 80, "gres": "gpu:1", "gpu_model": "x"}]})


# ---- through Snakemake -------------------------------------------------------------------------

OOM_ON_FIRST_ATTEMPT = """
import sys

args = sys.argv
if args[0].endswith("densebench") and args[1:2] == ["train"] and "--attempt" in args:
    if args[args.index("--attempt") + 1] == "1":
        import torch

        from densebench.train import loop

        def out_of_memory(self, x, y):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

        loop.Trainer.step = out_of_memory
"""
"""A sitecustomize for the jobs: the first attempt of every training runs out of GPU memory."""


@pytest.fixture
def workdir(tmp_path):
    """A scratch working directory with the repository's config/ linked in."""
    (tmp_path / "config").symlink_to(REPO / "config")
    return tmp_path


def site_config(workdir, gpus, **train) -> str:
    """The reduced demo (.test) with every run job on a GPU class of `gpus`."""
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config["resources"] = {"gpu": "always", "gpus": gpus}
    config["train"].update(train)
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.workflow
def test_dry_run_names_each_jobs_class_and_estimate_and_stops_on_a_run_no_class_holds(workdir):
    config = site_config(workdir, [{"name": "l40s-48g", "memory_gb": 48}])
    plan = snakemake(workdir, "-n", "--configfile", config).stdout
    trainings = re.findall(r"Training (\S+) / (\S+) on (\S+) \((.*)\)", plan)
    assert len(trainings) == 4
    assert all(
        re.match(r"1 GPU l40s-48g: est\. \d+ GB without checkpointing, 1 CPUs", r)
        for *_, r in trainings
    )
    tiny = site_config(workdir, [{"name": "tiny", "memory_gb": 0.001}])
    result = snakemake(workdir, "-n", "--configfile", tiny, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Job stats" not in output
    assert "run demo_glands / demo_vit_p8 / frozen (S = 64): the train job needs" in output
    assert "largest GPU class tiny" in output and "Remedy" in output


@pytest.mark.workflow
def test_an_out_of_memory_training_retries_with_checkpointing_then_a_larger_class(
    workdir, tmp_path_factory, registries
):
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(OOM_ON_FIRST_ATTEMPT)
    gpus = [{"name": "small", "memory_gb": 40}, {"name": "large", "memory_gb": 80}]
    config = site_config(workdir, gpus)
    run = "results/runs/demo_glands/demo_vit_p8/lora"
    cmd, env = snakemake_command(
        workdir,
        "--configfile",
        config,
        "--cores",
        "2",
        "--retries",
        "1",
        "--show-failed-logs",
        f"{run}/best.pt",
    )
    env["PYTHONPATH"] = f"{hooks}:{env.get('PYTHONPATH', '')}"
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    failed = re.search(r"out of GPU memory: run demo_glands / demo_vit_p8 / lora .*", output)
    assert failed, output[-4000:]
    assert "attempt 1, estimated" in failed[0] and "without activation checkpointing" in failed[0]
    assert failed[0].endswith("attempt 2 turns activation checkpointing on")
    log = (workdir / "logs/train/demo_glands/demo_vit_p8/lora.log").read_text()
    assert re.search(r"^attempt 2: 1 GPU small: est\. \d+ GB with checkpointing$", log, re.M)
    assert "activation checkpointing in:" in log and "epoch 2/2" in log
    # a third attempt would have asked for the next class
    site = load_config(config)
    spec = build_run_spec(site, "demo_glands", "demo_vit_p8", "lora", registries)
    assert gpu_plan(spec, "train", 3, site["resources"]).gpu_class.name == "large"
