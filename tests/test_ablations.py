"""The ablation target groups (issue 12): the grid each expands to, and Figure 5's builder."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from densebench.report.ablations import build_lora_rank
from densebench.report.aggregate import COLUMNS, tidy
from densebench.report.grid import Grid
from tests.test_workflow import (  # noqa: F401
    job_counts,
    predictions,
    snakemake,
    workdir,
    write_config,
)

LORA_RANK = {"lora_r4": 4, "lora_r8": 8, "lora": 16, "lora_r32": 32, "lora_r64": 64}
LORA_RANK |= {"lora_r128": 128}


@pytest.mark.workflow
def test_lora_rank_target_lists_the_ablations_training_jobs(workdir):  # noqa: F811
    dry = snakemake(workdir, "ablation_lora_rank", "-n", "--quiet", "rules", "reason")
    counts = job_counts(dry.stdout + dry.stderr)
    # 3 datasets x 4 models (one per size class) x (6 ranks + full fine-tuning)
    assert counts["train"] == predictions(counts) == 3 * 4 * 7
    assert counts["ablation_scores"] == counts["figure5"] == 1
    assert "score" not in counts and "aggregate" not in counts  # the grid is not built
    plan = snakemake(workdir, "ablation_lora_rank", "-n").stdout
    cells = set(re.findall(r"Training (\S+) / (\S+) on (\S+) \(", plan))
    assert {s for _, s, _ in cells} == {*LORA_RANK, "full"}
    assert {d for _, _, d in cells} == {"TNBC", "GlaS", "COSAS24"}
    assert {m for m, _, _ in cells} == {"lunit_vits8", "conch_v1", "uni_v1", "hoptimus_0"}


TRAINING = re.compile(
    r"Training (\S+) / (\S+) \((\S+)\) on (\S+) \(1 GPU \S+: est\. \d+ GB \w+ checkpointing, "
    r"(\d+) CPUs, (\d+) MB, (\d+) min\)"
)


@pytest.mark.workflow
def test_input_size_target_lists_each_size_with_resources_from_the_rule(workdir):  # noqa: F811
    # 4096 px at batch 8 fits no 80 GB card, even with checkpointing: the plan stops, naming it
    stopped = snakemake(workdir, "ablation_input_size", "-n", check=False)
    assert stopped.returncode != 0 and "Job stats" not in stopped.stdout
    assert re.search(
        r"run \w+ / uni_v1 / frozen \(S = 4096\): the train job needs an estimated \d+ GB",
        stopped.stdout + stopped.stderr,
    )
    site = workdir / "site.yaml"  # a site with a 192 GB class (B200, MI300X) beside the 80 GB
    site.write_text(
        "resources:\n  gpus: [{name: h100-80g, memory_gb: 80}, {name: b200-192g, memory_gb: 192}]\n"
    )
    plan = snakemake(workdir, "ablation_input_size", "-n", "--configfile", str(site)).stdout
    assert len(re.findall(r"\(resize4096\) on \w+ \(1 GPU b200-192g: est\. \d+ GB", plan)) == 3
    jobs = {(m, s, v, d): tuple(map(int, r)) for m, s, v, d, *r in TRAINING.findall(plan)}
    sizes = [256, 512, 1024, 2048, 4096]
    # upsample (the authors' __resize<S>): every default dataset at every S
    assert set(jobs) == {("uni_v1", "frozen", f"resize{s}", d) for s in sizes
                         for d in ("Janowczyk", "RINGS", "CRAG")}  # fmt: skip
    counts = snakemake(
        workdir, "ablation_input_size", "-n", "--configfile", str(site), "-q", "rules"
    )
    counts = job_counts(counts.stdout)
    assert counts["train_variant"] == counts["predict_variant"] == 15 and "train" not in counts
    assert counts["ablation_scores"] == counts["input_size_figure"] == 1
    # memory and runtime grow with S by the resource rule (4096 px: 16.8 Mpx per image)
    small, big = (
        jobs[("uni_v1", "frozen", "resize256", "RINGS")],
        jobs[("uni_v1", "frozen", "resize4096", "RINGS")],
    )
    assert big[1] > 2 * small[1] and big[2] > 100 * small[2]
    config = write_config(workdir, ablations={"input_size": {"upsample": False}})
    plan = snakemake(workdir, "ablation_input_size", "-n", "--configfile", str(config)).stdout
    kept = {(d, v) for _, _, v, d, *_ in TRAINING.findall(plan)}
    assert kept == {(d, f"resize{s}") for d in ("Janowczyk", "RINGS", "CRAG") for s in sizes[:3]}
    # no dataset's shortest side reaches 2048 (Janowczyk: 2000 px)


@pytest.mark.workflow
def test_baseline_target_trains_the_unet_on_every_dataset_beside_the_published(workdir):  # noqa: F811
    dry = snakemake(workdir, "baseline_unet", "-n", "--quiet", "rules")
    counts = job_counts(dry.stdout + dry.stderr)
    assert counts["train"] == predictions(counts) == 18 and counts["baseline_unet_report"] == 1
    assert counts["source_table"] == 1 and "score" not in counts  # the published PFMs
    plan = snakemake(workdir, "baseline_unet", "-n").stdout
    cells = set(re.findall(r"Training (\S+) / (\S+) on (\S+) \(1 GPU", plan))
    assert {(m, s) for m, s, _ in cells} == {("unet", "full")} and len(cells) == 18


@pytest.mark.workflow
def test_a_seeds_axis_needs_the_cells_seed(workdir):  # noqa: F811
    config = write_config(workdir, train={"seed": 42, "seeds": [1, 2]})
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0 and "add it to train.seeds" in result.stdout + result.stderr


@pytest.mark.workflow
def test_ablations_are_not_in_all_unless_enabled(workdir):  # noqa: F811
    ablation = {"lora_rank": {"datasets": ["demo_glands"], "models": ["demo_vit_p8"]}}
    config = write_config(workdir, ablations=ablation)
    counts = job_counts(snakemake(workdir, "-n", "--configfile", str(config)).stdout)
    assert "figure5" not in counts
    ablation["lora_rank"]["enabled"] = True
    config = write_config(workdir, ablations=ablation)
    counts = job_counts(snakemake(workdir, "-n", "--configfile", str(config)).stdout)
    assert counts["figure5"] == 1 and counts["train"] == 45 + 6  # lora (rank 16) is shared


@pytest.mark.workflow
def test_unknown_ablation_names_fail_before_any_job(workdir):  # noqa: F811
    config = write_config(workdir, ablations={"lora_rank": {"strategies": ["lora_r5"]}})
    result = snakemake(workdir, "-n", "--configfile", str(config), check=False)
    assert result.returncode != 0 and "Unknown strategy 'lora_r5'" in result.stdout + result.stderr


def _cells(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    rows = [
        {
            "dataset": d,
            "model": m,
            "strategy": s,
            "metric": "Mean_Dice",
            "class": pd.NA,
            "class_name": pd.NA,
            "point": v,
            "boot_mean": v,
            "ci_lower": v - 0.02,
            "ci_upper": v + 0.02,
            "boot_std": 0.01,
            "n_images": 10,
            "replicates": 100,
            "seed": 42,
            "source": "reproduced",
        }
        for (d, m, s), v in values.items()
    ]
    return tidy(pd.DataFrame(rows, columns=list(COLUMNS)))


def test_lora_rank_figure_has_a_panel_per_dataset_and_the_full_reference():
    values = {("D1", "a", s): 0.5 + r / 1000 for s, r in LORA_RANK.items()}
    values |= {("D1", "a", "full"): 0.7, ("D2", "a", "lora"): 0.4, ("D2", "a", "lora_r4"): 0.3}
    table = _cells(values)
    grid = Grid(["D1", "D2"], ["a"], [*LORA_RANK, "full"]).within(table)
    fig = build_lora_rank(table, grid, LORA_RANK)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["D1", "D2"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == [str(r) for r in LORA_RANK.values()]
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["4", "16"]
    line = axes[0].lines[0]
    assert list(line.get_ydata()) == pytest.approx([values[("D1", "a", s)] for s in LORA_RANK])
    full = [ln for ln in axes[0].lines if ln.get_linestyle() == "--"]
    assert len(full) == 1 and full[0].get_ydata()[0] == pytest.approx(0.7)
    assert not [ln for ln in axes[1].lines if ln.get_linestyle() == "--"]  # no full run on D2
    with pytest.raises(ValueError, match="no Mean_Dice cells"):
        build_lora_rank(table, Grid(["D3"], ["a"], ["lora"]), LORA_RANK)


def test_token_similarity_figure_plots_each_runs_gain_over_frozen():
    from densebench.report.ablations import build_token_similarity, similarity_gains

    table = _cells({("D", "a", "frozen"): 0.5, ("D", "a", "lora"): 0.6, ("D", "a", "dora"): 0.45})
    similarity = pd.DataFrame(
        {
            "dataset": ["D"] * 3,
            "model": ["a"] * 3,
            "strategy": ["frozen", "lora", "dora"],
            "mean_similarity": [0.8, 0.4, 0.9],
        }
    )
    grid = Grid(["D"], ["a"], ["frozen", "lora", "dora"])
    gains = similarity_gains(similarity, table, grid).set_index("strategy")["gain"]
    assert gains.to_dict() == pytest.approx({"frozen": 0.0, "lora": 0.1, "dora": -0.05})
    ax = build_token_similarity(similarity, table, grid).get_axes()[0]
    points = {tuple(np.round(c.get_offsets()[0], 3)) for c in ax.collections}
    assert points == {(0.8, 0.0), (0.4, 0.1), (0.9, -0.05)}
    with pytest.raises(ValueError, match="no run has both"):
        build_token_similarity(similarity.assign(dataset="E"), table, grid)


def test_qualitative_overlays_one_palette_per_dataset():
    from densebench.report.ablations import build_qualitative, class_palette, overlay

    palette = class_palette(3)
    assert palette[0].tolist() == [0, 0, 0] and len({tuple(c) for c in palette}) == 3
    assert len(class_palette(22)) == 22  # tab20 beyond 10 classes
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    classes = np.array([[0, 1], [2, 255]])
    out = overlay(image, classes, palette)
    assert out[0, 0].tolist() == [100, 100, 100] and out[1, 1].tolist() == [100, 100, 100]
    assert out[0, 1].tolist() == ((image[0, 1] + palette[1].astype(float)) / 2).round().tolist()
    predictions = {
        "image": np.stack([image, image]),
        "truth": np.stack([classes, classes]),
        "pred_frozen": np.zeros((2, 2, 2), dtype=int),
        "pred_lora": np.stack([classes, classes]),
    }
    grid = Grid(["D"], ["a"], ["frozen", "lora", "dora"], names={"strategies": {"lora": "LoRA"}})
    fig = build_qualitative(predictions, grid, ["background", "gland", "stroma"])
    axes = fig.get_axes()
    assert len(axes) == 2 * 4  # 2 images x (image, truth, frozen, LoRA): no DoRA prediction
    assert [ax.get_title() for ax in axes[:4]] == ["Image", "Ground truth", "frozen", "LoRA"]
    assert np.array_equal(axes[3].images[0].get_array(), overlay(image, classes, palette))
    with pytest.raises(ValueError, match="no prediction"):
        build_qualitative(predictions, Grid(["D"], ["a"], ["dora"]))
