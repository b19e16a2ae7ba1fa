"""The workflow's plan (densebench.plan.Plan), tested directly: no Snakemake."""

from __future__ import annotations

import copy

import pytest

from densebench.config import ROOT, load_config, validate_config
from densebench.plan import InapplicablePairError, Plan, grid_record, run_folder
from densebench.report.grid import Grid


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config(ROOT / "config/config.yaml")


def plan_of(config: dict, registries, **changes) -> Plan:
    """The plan of a copy of `config` with top-level `changes` (validated: defaults filled)."""
    changed = copy.deepcopy(config)
    changed.update(changes)
    return Plan(validate_config(changed), registries)


def test_the_grid_is_every_dataset_model_and_strategy_once_per_training_seed(paper, registries):
    plan = Plan(paper, registries)
    runs = plan.seed_runs()
    assert len(runs) == len(set(runs)) == len(paper["datasets"]) * len(paper["models"]) * 5
    assert {r[3] for r in runs} == {""}
    seeded = plan_of(paper, registries, train={**paper["train"], "seeds": [42, 1, 2]})
    assert len(seeded.seed_runs()) == 3 * len(runs)
    assert len({r[3] for r in seeded.seed_runs()}) == 3


def test_a_unet_paired_with_a_frozen_encoder_is_refused_before_any_job(paper, registries):
    with pytest.raises(InapplicablePairError) as error:
        plan_of(paper, registries, models=["uni_v1", "unet"])
    text = str(error.value)
    assert "unet" in text and "frozen" in text and "use strategy full" in text
    assert "pairs: applicable" in text
    plan = plan_of(paper, registries, models=["uni_v1", "unet"], pairs="applicable")
    unet = {r[2] for r in plan.seed_runs() if r[1] == "unet"}
    assert unet == {"full"} & set(paper["strategies"]) or unet == set()
    assert {r[2] for r in plan.seed_runs() if r[1] == "uni_v1"} == set(paper["strategies"])


def test_an_ablation_pair_that_cannot_run_is_refused(paper, registries):
    ablations = copy.deepcopy(paper["ablations"])
    ablations["baseline_unet"]["strategies"] = ["frozen"]
    with pytest.raises(InapplicablePairError, match=r"ablations\.baseline_unet"):
        plan_of(paper, registries, ablations=ablations)


def test_a_lora_rank_model_the_authors_leave_unadapted_is_refused_under_paper(paper, registries):
    """phikon (transformers) gets no LoRA in the authors' code: its lora_r* runs would all be
    its frozen run, so under `paper` the plan refuses it, naming the model and the remedy."""
    from densebench.lora_whitelist import paper_adapts
    from densebench.plan.runs import UnadaptedAblationModelError

    defaults = paper["ablations"]["lora_rank"]["models"]
    assert defaults == ["lunit_vits8", "conch_v1", "uni_v1", "hoptimus_0"]
    assert all(paper_adapts(registries.models[m], m) for m in defaults)
    Plan(paper, registries)  # the defaults pass
    ablations = copy.deepcopy(paper["ablations"])
    ablations["lora_rank"]["models"] = ["uni_v1", "phikon"]
    with pytest.raises(UnadaptedAblationModelError) as error:
        plan_of(paper, registries, ablations=ablations)
    text = str(error.value)
    assert isinstance(error.value, InapplicablePairError)  # the rules report it as a config error
    assert "ablations.lora_rank.models: phikon " in text and "uni_v1" not in text
    assert "take them out of ablations.lora_rank.models" in text
    assert "fixes: {lora_all_families: true}" in text
    fixed = plan_of(paper, registries, ablations=ablations, fixes={"lora_all_families": True})
    assert {r[1] for r in fixed.analysis_runs("lora_rank")} == {"uni_v1", "phikon"}
    plan_of(paper, registries, ablations=ablations, protocol="corrected")
    ablations["lora_rank"]["strategies"] = ["full"]  # no LoRA strategy: nothing to refuse
    plan_of(paper, registries, ablations=ablations)


def test_the_baseline_takes_the_config_datasets_without_changing_the_config(paper, registries):
    config = copy.deepcopy(paper)
    assert config["ablations"]["baseline_unet"]["datasets"] is None
    plan = Plan(config, registries)
    assert plan.ablations["baseline_unet"]["datasets"] == config["datasets"]
    assert config["ablations"]["baseline_unet"]["datasets"] is None
    runs = plan.analysis_runs("baseline_unet")
    assert [r[0] for r in runs] == config["datasets"]


def test_input_sizes_above_a_dataset_shortest_side_run_only_when_upsampling(paper, registries):
    ablations = copy.deepcopy(paper["ablations"])
    ablations["input_size"].update(datasets=["GlaS", "RINGS"], sizes=[256, 4096], upsample=False)
    plan = plan_of(paper, registries, ablations=ablations)
    sides = {d: registries.datasets[d]["min_side"] for d in ("GlaS", "RINGS")}
    expected = {(d, s) for d in sides for s in (256, 4096) if sides[d] >= s}
    assert {(r[0], int(r[3].removeprefix("resize"))) for r in plan.input_size_runs()} == expected
    ablations["input_size"]["upsample"] = True
    upsampled = plan_of(paper, registries, ablations=ablations).input_size_runs()
    assert len(upsampled) == 4 and len(expected) < 4


def test_each_source_reports_its_own_products(paper, registries):
    plan = Plan(paper, registries)
    published = set(plan.report.report_files("published"))
    reproduced = set(plan.report.report_files("reproduced"))
    merged = set(plan.report.report_files("merged"))
    assert not any("per_class" in f or "paired_bootstrap" in f for f in published)
    for strategy in plan.report.published_strategies():
        assert f"results/report/published/figures/heatmap_{strategy}.png" in published
    assert "results/report/merged/tables/per_class" in merged
    assert "results/report/reproduction.html" in merged
    assert not any(f.startswith("results/report/reproduction") for f in reproduced)
    assert not any("seed_spread" in f for f in reproduced)
    seeded = plan_of(paper, registries, train={**paper["train"], "seeds": [42, 1]})
    assert any("seed_spread" in f for f in seeded.report.report_files("reproduced"))
    assert not any("seed_spread" in f for f in seeded.report.report_files("published"))


def test_all_asks_for_every_run_product_the_table_and_the_report(paper, registries):
    plan = Plan(paper, registries)
    targets = plan.final_outputs()
    run = plan.seed_runs()[0]
    assert f"{run_folder(*run)}/best.pt" in targets
    assert f"{run_folder(*run)}/confusion.npz" in targets
    assert "results/tables/results.csv" in targets
    assert set(plan.report.report_files("reproduced")) <= set(targets)


def test_ablations_enter_all_only_when_enabled(paper, registries):
    assert Plan(paper, registries).ablation_targets() == []
    ablations = copy.deepcopy(paper["ablations"])
    ablations["lora_rank"]["enabled"] = True
    plan = plan_of(paper, registries, ablations=ablations)
    assert plan.ablation_targets() == plan.ablation_targets("lora_rank")
    assert plan.ablation_targets()[-1] == "results/ablations/lora_rank/figure5.png"


def test_the_report_grid_of_our_runs_is_the_config_and_published_adds_the_registry(
    paper, registries
):
    small = plan_of(paper, registries, models=["uni_v1", "phikon"], datasets=["GlaS"])
    ours = small.report.report_grid("reproduced")
    assert list(ours.models) == ["uni_v1", "phikon"] and list(ours.datasets) == ["GlaS"]
    theirs = small.report.report_grid("published")
    assert list(theirs.models[:2]) == ["uni_v1", "phikon"]
    assert set(theirs.models) == set(registries.models)
    assert ours.categories == {"GlaS": registries.datasets["GlaS"]["category"]}


def test_a_grid_record_reads_back_to_the_same_grid(paper, registries):
    plan = Plan(paper, registries)
    for sizes in (False, True):
        grid = plan.report.report_grid("merged", sizes)
        back = Grid.from_json(grid_record(grid, sizes))
        assert back == grid
    assert "params_m" not in grid_record(plan.report.report_grid("merged"))
    assert grid_record(plan.report.report_grid("merged", True), True)["params_m"]


def test_a_model_without_a_hub_repo_needs_no_weights_job(paper, registries):
    import dataclasses

    record = {k: v for k, v in registries.models["uni_v1"].items() if k != "hf_repo"}
    changed = dataclasses.replace(registries, models={**registries.models, "uni_v1": record})
    plan = Plan(paper, changed)
    assert not plan.needs_weights("uni_v1")
    assert "uni_v1" not in plan.weights_models(pretrain=False)
    assert Plan(paper, registries).needs_weights("uni_v1")
    assert "uni_v1" in Plan(paper, registries).weights_models(pretrain=False)


def test_an_enabled_unet_baseline_joins_the_grids_tables(paper, registries):
    ablations = copy.deepcopy(paper["ablations"])
    ablations["baseline_unet"].update(enabled=True, datasets=["GlaS"])
    plan = plan_of(paper, registries, ablations=ablations)
    assert "results/runs/GlaS/unet/full/confusion.npz" in plan.dataset_run_files(
        "GlaS", "confusion.npz"
    )
    assert not any("/unet/" in f for f in plan.dataset_run_files("CRAG", "confusion.npz"))
    assert plan.report.report_grid("reproduced").models[-1] == "unet"
    assert "unet" in plan.report.cards("models", "reproduced", ["display_name"])
    alone = Plan(paper, registries)
    assert "unet" not in alone.report.report_grid("reproduced").models
    assert not any("/unet/" in f for f in alone.dataset_run_files("GlaS", "confusion.npz"))


# ---- shared training jobs (densebench.plan.sharing) ------------------------------------------
def sharing_plan(config: dict, registries, workdir, **train) -> Plan:
    """The plan of the demo config (train keys changed), reading results from workdir."""
    changed = copy.deepcopy(config)
    changed["train"] = {**changed["train"], **train}
    return Plan(validate_config(changed), registries, workdir)


def trained(plan: Plan, workdir, run, **record) -> None:
    """Write a trained run's outputs, its provenance holding its identity and `record`."""
    import json

    from densebench.identity import identity_digest

    folder = workdir / run_folder(*run)
    folder.mkdir(parents=True)
    for name in ("best.pt", "train_log.csv"):
        (folder / name).write_text("x")
    provenance = {"training_identity": identity_digest(plan.spec(run)), **record}
    (folder / "provenance.json").write_text(json.dumps(provenance))


def test_each_cell_shares_one_job_among_its_frozen_encoder_runs(demo_config, registries, tmp_path):
    plan = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=True)
    groups = plan.sharing.groups
    assert len(groups) == 3 * 3  # datasets x models
    assert {tuple(r[2] for r in g) for g in groups} == {SHARED}
    run = ("demo_tissue", "demo_vit_p8", "cnn_adapter", "")
    staging = plan.sharing.staging(run)
    assert staging == "results/shared/demo_tissue/demo_vit_p8/" + "+".join(SHARED)
    assert plan.sharing.staging(("demo_tissue", "demo_vit_p8", "lora", "")) is None
    assert plan.resources("train", run).gpu_note == "no GPU"  # its train job only takes files
    members = plan.sharing.members("demo_tissue", "demo_vit_p8", staging.rsplit("/")[-1])
    assert [r[2] for r in members] == list(SHARED)
    assert sorted(plan.sharing.jobs()) == sorted({plan.sharing.staging(g[0]) for g in groups})
    off = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=False)
    assert off.sharing.groups == [] and off.sharing.staging(run) is None


SHARED = ("frozen", "cnn_adapter", "transformer_adapter")


def test_only_runs_that_need_training_join_and_trained_runs_keep_their_job(
    demo_config, registries, tmp_path
):
    plan = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=True)
    cell = ("demo_glands", "demo_vit_p16")
    frozen, cnn, adapter = ((*cell, s, "") for s in SHARED)
    trained(plan, tmp_path, frozen, shared_job="+".join(SHARED))
    fresh = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=True)
    root = "results/shared/demo_glands/demo_vit_p16/"
    # the trained run keeps naming the job that trained it: its train job's inputs never change
    assert fresh.sharing.staging(frozen) == root + "+".join(SHARED)
    assert fresh.sharing.staging(cnn) == fresh.sharing.staging(adapter)
    assert fresh.sharing.staging(cnn) == root + "cnn_adapter+transformer_adapter"
    assert fresh.sharing.jobs()[root + "cnn_adapter+transformer_adapter"] == [cnn, adapter]
    # a run trained alone, under the current identity: the last one trains alone
    trained(fresh, tmp_path, cnn, shared_job=None)
    alone = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=True)
    assert alone.sharing.staging(adapter) is None and alone.sharing.staging(cnn) is None
    # a recipe change: every trained run needs training again, all three share one job
    changed = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=True, lr=0.5)
    assert changed.sharing.staging(frozen) == root + "+".join(SHARED)
    assert changed.sharing.staging(cnn) == root + "+".join(SHARED)


def test_a_staging_folder_on_disk_keeps_its_members(demo_config, registries, tmp_path):
    """Job processes parse the workflow again while a shared job's members are taken out: a
    run whose cell has a staging folder naming it keeps that folder."""
    plan = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=True)
    cell = ("demo_nuclei", "demo_vit_p8")
    frozen, cnn, adapter = ((*cell, s, "") for s in SHARED)
    name = "+".join(SHARED)
    (tmp_path / "results/shared/demo_nuclei/demo_vit_p8" / name / "cnn_adapter").mkdir(parents=True)
    trained(plan, tmp_path, frozen, shared_job=name)  # taken out already
    later = sharing_plan(demo_config, registries, tmp_path, share_frozen_backbone=True)
    assert {later.sharing.staging(r) for r in (frozen, cnn, adapter)} == {
        f"results/shared/demo_nuclei/demo_vit_p8/{name}"
    }


def test_a_model_with_a_random_frozen_forward_trains_its_runs_separately(
    demo_config, registries, tmp_path
):
    import dataclasses

    record = copy.deepcopy(registries.models["demo_vit_p8"])
    record["kwargs"] = {**record["kwargs"], "drop_path_rate": 0.1}
    rated = dataclasses.replace(registries, models={**registries.models, "demo_vit_p8": record})
    plan = sharing_plan(demo_config, rated, tmp_path, share_frozen_backbone=True)
    assert {g[0][1] for g in plan.sharing.groups} == {"demo_vit_p14_reg4", "demo_vit_p16"}
    why = plan.sharing.refusals()
    assert list(why) == ["demo_vit_p8"] and "drop_path_rate = 0.1" in why["demo_vit_p8"]
    assert plan.sharing.staging(("demo_tissue", "demo_vit_p8", "frozen", "")) is None
    fixed = copy.deepcopy(demo_config)
    fixed["fixes"] = {**fixed.get("fixes", {}), "frozen_encoder_eval": True}
    assert sharing_plan(fixed, rated, tmp_path, share_frozen_backbone=True).sharing.refusals() == {}


def test_the_shared_job_is_sized_for_one_encoder_and_every_runs_head(paper, registries, tmp_path):
    from densebench.memory import estimate, shared_estimate
    from densebench.resources import gpu_seconds, job_resources, shared_gpu_seconds

    plan = Plan(paper, registries, tmp_path)
    runs = [("RINGS", "hoptimus_0", s, "") for s in SHARED]
    specs = [plan.spec(r) for r in runs]
    shared = shared_estimate(specs, False)
    alone = [estimate(s, "train", False) for s in specs]
    assert max(a.total for a in alone) < shared.total < sum(a.total for a in alone)
    job = plan.shared_resources("RINGS", "hoptimus_0", "+".join(SHARED))
    card, fractions = registries.datasets["RINGS"], paper["data"]["split_fractions"]
    runtimes = [job_resources(s, card, fractions, "train").runtime for s in specs]
    assert job.gpu == 1 and max(runtimes) < job.runtime < sum(runtimes)
    seconds = [gpu_seconds(s, card, fractions, "train") for s in specs]
    assert max(seconds) < shared_gpu_seconds(specs, card, fractions) < sum(seconds)
    assert plan.resources("train", runs[0]).gpu == 0  # each run's train job only takes files
