"""Job resources derived from the run spec (densebench.resources)."""

from __future__ import annotations

import re

import pytest

from densebench.config import ROOT, load_config
from densebench.resources import job_resources, memory_table, resource_table
from densebench.spec import build_run_spec


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return load_config(ROOT / "config/config.yaml")


def resources(config, registries, dataset, model, strategy, stage="train", attempt=1, size=None):
    config = {**config, "train": {**config["train"], "input_size": size}}
    spec = build_run_spec(config, dataset, model, strategy, registries)
    card = registries.datasets[dataset]
    return job_resources(spec, card, config["data"]["split_fractions"], stage, attempt)


def test_bigger_models_sides_and_trained_encoders_cost_more(paper_config, registries):
    def runtime(model="uni_v1", strategy="frozen", size=448):
        return resources(paper_config, registries, "RINGS", model, strategy, size=size).runtime

    assert runtime("lunit_vits8", size=448) < runtime() < runtime("gigapath", size=448)
    assert runtime(size=224) < runtime(size=448) < runtime(size=992)
    assert (
        runtime() < runtime(strategy="lora") < runtime(strategy="dora") < runtime(strategy="full")
    )
    assert runtime() < runtime(strategy="transformer_adapter")
    big = resources(paper_config, registries, "RINGS", "gigapath", "full", size=992)
    small = resources(paper_config, registries, "RINGS", "uni_v1", "frozen", size=992)
    assert big.mem_mb > small.mem_mb and big.gpu == small.gpu == 1


def test_retries_scale_runtime_and_memory(paper_config, registries):
    first, second, third = (
        resources(paper_config, registries, "BCSS", "uni_v1", "lora", attempt=a) for a in (1, 2, 3)
    )
    assert second.runtime == 2 * first.runtime and third.runtime == 3 * first.runtime
    assert second.mem_mb == pytest.approx(1.5 * first.mem_mb, abs=1)
    assert third.mem_mb == pytest.approx(2.0 * first.mem_mb, abs=1)
    assert second.cpus_per_gpu == first.cpus_per_gpu


def test_demo_models_request_no_gpu(demo_config, registries):
    spec = build_run_spec(demo_config, "demo_glands", "demo_vit_p14_reg4", "lora", registries)
    card = registries.datasets["demo_glands"]
    job = job_resources(spec, card, demo_config["data"]["split_fractions"], "predict")
    assert job.gpu == 0 and job.threads == 1


def test_readme_table_is_the_rules_output(paper_config, registries):
    text = (ROOT / "config/README.md").read_text()
    table = resource_table(paper_config, registries)
    assert table in text, "regenerate config/README.md's table with resources.resource_table"
    assert re.search(r"\| RINGS \| gigapath \| full \| 992 \|", table)


def compute_rows(table: str) -> dict[str, list[float]]:
    """The per-strategy rows of compute_table's first table (and the **all** row), as numbers:
    runs, train GPU h, shared, predict GPU h, time limits, shared."""
    rows = {}
    for line in table.split("\n\n")[0].splitlines()[2:]:
        name, *cells = (c.strip() for c in line.strip("|").split("|"))
        rows[name] = [float(c) for c in cells]
    return rows


def job_rows(table: str) -> dict[str, tuple[int, int]]:
    """compute_table's train jobs, without and with sharing (the first number of a cell)."""
    rows = {}
    for line in table.split("\n\n")[1].splitlines()[2:]:
        name, without, shared = (c.strip() for c in line.strip("|").split("|"))
        rows[name] = (int(without), int(shared.split()[0]))
    return rows


@pytest.fixture(scope="module")
def paper_compute(paper_config, registries) -> str:
    from densebench.plan import Plan
    from densebench.resources import compute_table

    return compute_table(Plan(paper_config, registries))


def test_artifact_compute_table_is_the_rules_output(paper_compute):
    assert paper_compute in (ROOT / "ARTIFACT.md").read_text(), "regenerate it with compute_table"
    rows = compute_rows(paper_compute)
    runs, separate, shared = rows["**all**"][:3]
    assert runs == 1530 and 1000 < separate < 10_000  # GPU-hours of the whole paper grid
    assert shared < separate and rows["**all**"][5] < rows["**all**"][4]
    for strategy in ("frozen", "cnn_adapter", "transformer_adapter"):  # encoder: frozen
        assert rows[strategy][2] < rows[strategy][1] and rows[strategy][5] < rows[strategy][4]
    for strategy in ("lora", "dora"):  # they train the encoder: never shared
        assert rows[strategy][2] == rows[strategy][1] and rows[strategy][5] == rows[strategy][4]
    jobs = job_rows(paper_compute)
    assert jobs["one run each"] == (1530, 1530 - 3 * 306)  # lora and dora of each cell
    assert jobs["**all**"] == (1530, 1530 - 2 * 306)  # one job per dataset x model for three


def test_config_readme_states_the_sharing_totals(paper_compute):
    rows, jobs = compute_rows(paper_compute), job_rows(paper_compute)
    separate, shared = (f"{v:.0f}" for v in rows["**all**"][1:3])
    text = " ".join((ROOT / "config/README.md").read_text().split())
    assert f"train estimate from {separate} to {shared} GPU-hours" in text
    assert (
        "training jobs from {} to {} ({} alone".format(*jobs["**all**"], jobs["one run each"][1])
        in text
    )


def test_the_estimate_with_sharing_ignores_the_setting_and_splits_each_job_over_its_runs(
    paper_config, registries
):
    from densebench.plan import Plan
    from densebench.resources import (
        compute_table,
        gpu_seconds,
        shared_gpu_seconds,
        sharing_groups,
        train_gpu_hours,
    )

    train = {**paper_config["train"], "share_frozen_backbone": False}
    off = {**paper_config, "train": train}
    plan = Plan(off, registries)
    assert not plan.sharing.enabled and plan.sharing.groups == []
    assert compute_table(plan) == compute_table(Plan(paper_config, registries))
    assert off["train"]["share_frozen_backbone"] is False  # the config is not changed
    runs = [r for r in plan.seed_runs() if r[0] == "GlaS" and r[1] in ("uni_v1", "phikon")]
    groups = sharing_groups(plan, runs)
    assert [[r[2] for r in g] for g in groups] == [
        ["frozen", "cnn_adapter", "transformer_adapter"]
    ] * 2
    hours = train_gpu_hours(plan, runs, groups)
    fractions, card = paper_config["data"]["split_fractions"], registries.datasets["GlaS"]
    for group in groups:
        job = shared_gpu_seconds([plan.spec(r) for r in group], card, fractions) / 3600
        assert sum(hours[r][1] for r in group) == pytest.approx(job)
        assert job < sum(hours[r][0] for r in group)
        shares = [hours[r][1] / hours[r][0] for r in group]
        assert shares == pytest.approx([shares[0]] * len(group))  # in proportion
    for run in runs:
        alone = gpu_seconds(plan.spec(run), card, fractions, "train") / 3600
        assert hours[run][0] == pytest.approx(alone)
        if run[2] in ("lora", "dora"):
            assert hours[run][1] == hours[run][0]
    assert sharing_groups(plan, [r for r in runs if r[2] != "cnn_adapter"]) == [
        tuple(r for r in g if r[2] != "cnn_adapter") for g in groups
    ]  # cut to the runs asked for
    assert sharing_groups(plan, [r for r in runs if r[2] in ("frozen", "lora")]) == []


def test_no_registry_model_draws_random_numbers_in_its_frozen_forward(registries):
    from densebench.sharing import random_rates

    # config/README.md says so: every model's frozen-encoder runs may share
    assert {m: random_rates(r) for m, r in registries.models.items() if random_rates(r)} == {}


def test_a_record_without_params_m_gets_an_estimate_from_its_width():
    from densebench.gpu_plan import encoder_params

    assert encoder_params({"embed_dim": 1024}) == pytest.approx(302e6, rel=0.01)
    assert encoder_params({"embed_dim": 1024, "params_m": 86}) == 86e6


def test_site_policy_forces_or_drops_the_gpu_and_caps_the_runtime(
    paper_config, demo_config, registries
):
    demo = build_run_spec(demo_config, "demo_glands", "demo_vit_p8", "lora", registries)
    fractions = demo_config["data"]["split_fractions"]
    card = registries.datasets["demo_glands"]
    assert job_resources(demo, card, fractions, "train", 1, {"gpu": "always"}).gpu == 1
    spec = build_run_spec(paper_config, "RINGS", "hoptimus_0", "lora", registries)
    rings = registries.datasets["RINGS"]
    fractions = paper_config["data"]["split_fractions"]
    free = job_resources(spec, rings, fractions, "train", 1)
    assert free.gpu == 1 and free.runtime > 2880
    cpu_only = job_resources(spec, rings, fractions, "train", 1, {"gpu": "never"})
    assert cpu_only.gpu == 0 and cpu_only.threads == free.threads
    for attempt in (1, 2, 3):
        capped = job_resources(spec, rings, fractions, "train", attempt, {"max_runtime": 2880})
        assert capped.runtime == 2880 and capped.mem_mb >= free.mem_mb
    short = build_run_spec(paper_config, "TNBC", "uni_v1", "lora", registries)
    tnbc = registries.datasets["TNBC"]
    assert job_resources(short, tnbc, fractions, "train", 1, {"max_runtime": 2880}).runtime < 60


def test_readme_gpu_memory_table_is_the_memory_models_output(paper_config, registries):
    text = (ROOT / "config/README.md").read_text()
    assert memory_table(paper_config, registries) in text
