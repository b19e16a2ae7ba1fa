"""Cluster resources of a run's jobs, derived from its run spec (no hand-listed numbers).

A FLOP-style rule (no torch; config/README.md, "Job resources", states it with its numbers):

* tokens T = (S / patch)^2 + prefix tokens, at the run's input side S;
* encoder forward per image F = 2 P T (1 + T / (6 d)) FLOPs, P parameters, d embed dim (the
  second term is attention: 4 T^2 d per block, with about P / (12 d^2) blocks);
* training per image: F (1 + backward), backward = BACKWARD[encoder] (0 for a frozen encoder,
  activation gradients through it for LoRA, more for DoRA's norms, weights as well for full)
  plus ADAPTER_BACKWARD when the strategy adds blocks that the encoder's features pass
  through (transformer / CNN adapters: records with `depth` or `block_units`);
* per epoch: the training images (card `num_images` x train fraction) trained, the validation
  images forwarded; prediction forwards the test images;
* GPU seconds = FLOPs / SUSTAINED_TFLOPS, runtime = (OVERHEAD_MIN + SAFETY x GPU minutes) x
  attempt; host memory = the model's fp32 weights twice (state dict + module, three times when
  full fine-tuning stores the encoder), BASE_MEM_MB and WORKER_MEM_MB per loader worker, x
  (1 + 0.5 (attempt - 1));
* CPUs per GPU: loader workers to keep the GPU fed at AUG_IMAGES_PER_CORE_S images per second
  per core (at 1 Mpx; benchmarks/bench_augment.py), plus one for the main process, within
  [MIN_CPUS, MAX_CPUS].

Demo models (`is_demo_model`: tiny, no downloaded weights) run on the CPU: no GPU, small memory
and runtime. A convolutional network (the UNet baseline) states its forward FLOPs per input
pixel (`flops_per_pixel`) instead of the ViT token rule.

GPU class (densebench.gpu_plan): the smallest of the site's classes whose memory holds the
job's estimate (densebench.memory), escalated on retries; a run that no class holds stops the
plan.

Site policy (config `resources`): `gpu` is `auto` (a GPU for pretrained models, none for demo
models), `always` (every train / predict job, e.g. to try a cluster's GPU path with the demo) or
`never` (a CPU-only cluster); `max_runtime` caps every job's runtime at a partition's time
limit: a training cut there resumes from `last.pt` on the next attempt, so a run longer than the
cap finishes across retries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from densebench import memory
from densebench.geometry import tokens
from densebench.gpu_plan import (
    NO_GPU,
    GpuPlan,
    Stage,
    encoder_params,
    gpu_plan,
    is_demo_model,
    policy_of,
    shared_gpu_plan,
)
from densebench.spec import build_run_spec

SUSTAINED_TFLOPS = 60.0
"""Assumed sustained bf16 throughput of one GPU (A100: 312 peak, ~20% utilisation; an H200 is
faster, so this is conservative)."""
SAFETY = 2.0
"""Factor on the estimated GPU time (data loading, evaluation overheads, slow nodes)."""
OVERHEAD_MIN = 15.0
"""Fixed minutes per job: start-up, weights loading, checkpoints."""
BACKWARD = {"frozen": 0.0, "lora": 1.0, "dora": 1.5, "full": 2.0}
"""Backward cost through the encoder, in encoder forwards, per `encoder` of a strategy."""
ADAPTER_BACKWARD = 1.0
"""Backward through the frozen encoder's blocks when an adapter's features pass through them."""
BASE_MEM_MB = 6000
"""Host memory of the Python / torch / CUDA process."""
WORKER_MEM_MB = 1500
"""Host memory per data-loader worker (a decoded 1 Mpx batch and its augmentation)."""
AUG_IMAGES_PER_CORE_S = 12.5
"""Training samples per second per core at 1 Mpx through the uint8 data feed: 80 core-ms per
sample per Mpx (benchmarks/bench_data_feed.py measures 66-72 at 992 px, 80-87 at 512)."""
MIN_CPUS, MAX_CPUS = 2, 16
"""Bounds of the CPUs per GPU."""
DEMO = {"cpus": 1, "mem_mb": 2000, "runtime": 30}
"""Resources of a demo-model job (random weights, CPU)."""


@dataclass(frozen=True)
class JobResources:
    """What one train or predict job requests (Snakemake resource names)."""

    gpu: int
    cpus_per_gpu: int
    mem_mb: int
    runtime: int
    plan: GpuPlan = NO_GPU

    @property
    def threads(self) -> int:
        """CPUs the job gets (its `threads:`)."""
        return self.cpus_per_gpu

    @property
    def gpu_model(self) -> str | None:
        """SLURM `--gpus=<model>:1` of the job's class (the slurm executor's `gpu_model`)."""
        return self.plan.gpu_class.gpu_model if self.plan.gpu_class else None

    @property
    def gres(self) -> str | None:
        """SLURM `--gres` of the job's class."""
        return self.plan.gpu_class.gres if self.plan.gpu_class else None

    @property
    def constraint(self) -> str | None:
        """SLURM `--constraint` of the job's class."""
        return self.plan.gpu_class.constraint if self.plan.gpu_class else None

    @property
    def gpu_note(self) -> str:
        """The GPU part of the job's message (`GpuPlan.note`)."""
        return self.plan.note()


def forward_flops(spec: Any) -> float:
    """Encoder forward FLOPs of one image: 2 P T plus attention's T^2 share; for a
    convolutional network (a record with `flops_per_pixel`: the UNet) that times S^2."""
    record = spec.model_record
    if record.get("flops_per_pixel") is not None:
        return float(record["flops_per_pixel"]) * spec.input_size**2
    params = encoder_params(record)
    n = tokens(spec)
    return 2.0 * params * n * (1.0 + n / (6.0 * float(record["embed_dim"])))


def backward_factor(strategy: Any) -> float:
    """Backward cost in encoder forwards: the encoder's own, plus the adapters' pass-through."""
    adapter = "depth" in strategy or "block_units" in strategy
    return BACKWARD[strategy["encoder"]] + (ADAPTER_BACKWARD if adapter else 0.0)


def split_images(card: Any, fractions: Any) -> tuple[float, float, float]:
    """Train / val / test image counts of a dataset (card size x split fractions)."""
    n = float(card["num_images"])
    return n * fractions[0], n * fractions[1], n * fractions[2]


def gpu_seconds(spec: Any, card: Any, fractions: Any, stage: Stage) -> float:
    """Estimated GPU seconds of a stage of the run (the whole training or the prediction)."""
    train, val, test = split_images(card, fractions)
    fwd = forward_flops(spec)
    if stage == "predict":
        flops = test * fwd
    else:
        per_epoch = train * fwd * (1.0 + backward_factor(spec.strategy_record)) + val * fwd
        flops = spec.train.epochs * per_epoch
    return flops / (SUSTAINED_TFLOPS * 1e12)


def images_per_second(spec: Any) -> float:
    """Training images per second the GPU consumes (what the loader must deliver)."""
    per_image = forward_flops(spec) * (1.0 + backward_factor(spec.strategy_record))
    return SUSTAINED_TFLOPS * 1e12 / per_image


def cpus_per_gpu(spec: Any, max_cpus: int = MAX_CPUS) -> int:
    """Loader workers to feed the GPU at the input's megapixels, plus the main process."""
    megapixels = spec.input_size**2 / 1e6
    workers = math.ceil(images_per_second(spec) * megapixels / AUG_IMAGES_PER_CORE_S)
    return max(MIN_CPUS, min(max_cpus, workers + 1))


def host_mem_mb(spec: Any, cpus: int) -> float:
    """Host memory: fp32 weights (twice: state dict and module; full fine-tuning adds the
    host copies of its trainable state: the best state, and the resume snapshot's weights and
    two Adam moments), the process and the loader workers (each WORKER_MEM_MB per Mpx of
    input, at least one: the input-size ablation's 4096 px batches are 17 times larger)."""
    copies = 6 if spec.strategy_record["encoder"] == "full" else 2
    weights_mb = encoder_params(spec.model_record) / 1e6 * 4.0 * copies
    per_worker = WORKER_MEM_MB * max(1.0, spec.input_size**2 / 1e6)
    return BASE_MEM_MB + weights_mb + per_worker * max(cpus - 1, 0)


def job_resources(
    spec: Any,
    card: Any,
    fractions: Any,
    stage: Stage,
    attempt: int = 1,
    policy: Any = None,
) -> JobResources:
    """Resources of a train or predict job of a run, scaled up on retries (attempt >= 1),
    under the site policy (config `resources`: GPU policy, runtime cap)."""
    policy = policy_of(policy)
    plan = gpu_plan(spec, stage, attempt, policy)
    return planned_resources(
        spec, plan, lambda: gpu_seconds(spec, card, fractions, stage), attempt, policy
    )


def planned_resources(
    spec: Any, plan: Any, seconds: Callable[[], float], attempt: int, policy: Any
) -> JobResources:
    """A job's resources from its GPU plan and its estimated GPU seconds (`seconds`, not asked
    for a demo model, whose resources are fixed): CPUs and host memory of `spec`, memory and
    runtime scaled up on retries, the runtime capped by the site policy."""
    mem_scale = 1.0 + 0.5 * (attempt - 1)
    gpu = 0 if plan.gpu_class is None or plan.gpu_class.gres is not None else 1
    if is_demo_model(spec.model_record):
        job = JobResources(
            gpu, DEMO["cpus"], int(DEMO["mem_mb"] * mem_scale), DEMO["runtime"] * attempt, plan
        )
    else:
        cpus = cpus_per_gpu(spec, int(policy["max_cpus_per_gpu"]))
        minutes = OVERHEAD_MIN + SAFETY * seconds() / 60.0
        job = JobResources(
            gpu=gpu,
            cpus_per_gpu=cpus,
            mem_mb=math.ceil(host_mem_mb(spec, cpus) * mem_scale),
            runtime=math.ceil(minutes) * attempt,
            plan=plan,
        )
    cap = policy["max_runtime"]
    return job if cap is None else replace(job, runtime=min(job.runtime, int(cap)))


def shared_gpu_seconds(specs: Any, card: Any, fractions: Any) -> float:
    """Estimated GPU seconds of a shared training job (densebench.train.shared): the encoder's
    forward once per image for all its runs, each run's own backward share on top."""
    train, val, _ = split_images(card, fractions)
    first = specs[0]
    fwd = forward_flops(first)
    backward = sum(backward_factor(spec.strategy_record) for spec in specs)
    flops = first.train.epochs * (train * fwd * (1.0 + backward) + val * fwd)
    return flops / (SUSTAINED_TFLOPS * 1e12)


def shared_job_resources(
    specs: Any, card: Any, fractions: Any, attempt: int = 1, policy: Any = None
) -> JobResources:
    """Resources of a shared training job: the GPU class of its memory estimate
    (densebench.gpu_plan.shared_gpu_plan), CPUs to feed the one data stream at the shared
    step's pace, the first run's host memory, runtime from `shared_gpu_seconds`."""
    policy = policy_of(policy)
    plan = shared_gpu_plan(specs, attempt, policy)
    return planned_resources(
        specs[0], plan, lambda: shared_gpu_seconds(specs, card, fractions), attempt, policy
    )


STAGED = JobResources(gpu=0, cpus_per_gpu=1, mem_mb=1000, runtime=10)
"""Resources of a run's `train` job that takes its outputs from its shared job (a move)."""


CORNERS = (
    ("WSSS4LUAD", "lunit_vits8", "frozen"),
    ("TNBC", "uni_v1", "lora"),
    ("PanNuke", "uni_v1", "dora"),
    ("Janowczyk", "gigapath", "full"),
    ("RINGS", "gigapath", "full"),
    ("RINGS", "gigapath", "transformer_adapter"),
    ("RINGS", "hoptimus_0", "lora"),
    ("RINGS", "midnight12k", "transformer_adapter"),
    ("RINGS", "musk", "lora"),
)
"""Cells at the grid's corners: the smallest and largest models, input sides and strategies."""


def resource_table(config: Any, registries: Any, cells: Any = CORNERS) -> str:
    """Markdown table of the first-attempt train / predict resources of some cells."""

    fractions = config["data"]["split_fractions"]
    lines = [
        "| dataset | model | strategy | S | tokens | train GPU h | cpus/gpu | mem_mb "
        "| train runtime (min) | predict runtime (min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, model, strategy in cells:
        spec = build_run_spec(config, dataset, model, strategy, registries)
        card = registries.datasets[dataset]
        train = job_resources(spec, card, fractions, "train")
        predict = job_resources(spec, card, fractions, "predict")
        hours = gpu_seconds(spec, card, fractions, "train") / 3600
        lines.append(
            f"| {dataset} | {model} | {strategy} | {spec.input_size} | {tokens(spec)} "
            f"| {hours:.2f} | {train.cpus_per_gpu} | {train.mem_mb} | {train.runtime} "
            f"| {predict.runtime} |"
        )
    return "\n".join(lines)


def sharing_groups(plan: Any, runs: Any) -> list[tuple[Any, ...]]:
    """The shared training jobs among `runs` of a plan (densebench.plan.Plan) with
    `train.share_frozen_backbone` on, whatever its config says (densebench.plan.sharing: per
    dataset, model and variant the frozen-encoder runs, where the model may share): each
    group's members of `runs`, where two or more. The config is never changed: with the
    setting off, the groups come from a plan of a copy with it on."""
    sharing = plan.sharing
    if not sharing.enabled:
        train = {**plan.config["train"], "share_frozen_backbone": True}
        sharing = type(plan)({**plan.config, "train": train}, plan.registries).sharing
    wanted = set(runs)
    groups = (tuple(run for run in group if run in wanted) for group in sharing.groups)
    return [group for group in groups if len(group) > 1]


def _share(total: float, weights: list[float]) -> list[float]:
    """`total` split over the members in proportion to `weights` (equally if they are 0)."""
    whole = sum(weights)
    if whole <= 0:
        return [total / len(weights)] * len(weights)
    return [total * w / whole for w in weights]


def _attributed(
    plan: Any,
    runs: Any,
    groups: list[tuple[Any, ...]] | None,
    alone: Callable[[Any, Any, Any], float],
    together: Callable[[list[Any], Any, Any], float],
) -> dict[Any, tuple[float, float]]:
    """Per run: its value trained alone, `alone(spec, card, fractions)`, and its share of its
    shared job's value, `together(specs, card, fractions)`, split over the job's members in
    proportion to their values alone (so the shares of a job sum to its value; a run that
    trains alone keeps its own). `groups`: `sharing_groups` (None: of these runs)."""
    runs = list(runs)
    groups = sharing_groups(plan, runs) if groups is None else groups
    fractions = plan.config["data"]["split_fractions"]
    cards = plan.registries.datasets
    own = {run: alone(plan.spec(run), cards[run[0]], fractions) for run in runs}
    shared = dict(own)
    for group in groups:
        value = together([plan.spec(run) for run in group], cards[group[0][0]], fractions)
        shared.update(zip(group, _share(value, [own[run] for run in group]), strict=True))
    return {run: (value, shared[run]) for run, value in own.items()}


def train_gpu_hours(
    plan: Any, runs: Any, groups: list[tuple[Any, ...]] | None = None
) -> dict[Any, tuple[float, float]]:
    """Estimated training GPU-hours of each run (the FLOP rule): trained alone, and with
    `train.share_frozen_backbone` on its share of its shared job's `shared_gpu_seconds`
    (`_attributed`)."""
    return _attributed(
        plan,
        runs,
        groups,
        lambda spec, card, fractions: gpu_seconds(spec, card, fractions, "train") / 3600,
        lambda specs, card, fractions: shared_gpu_seconds(specs, card, fractions) / 3600,
    )


def train_time_limits(
    plan: Any, runs: Any, groups: list[tuple[Any, ...]] | None = None
) -> dict[Any, tuple[float, float]]:
    """First-attempt time limits (hours) of each run's training: its own job's, and with
    `train.share_frozen_backbone` on its share of its shared job's (`shared_job_resources`,
    `_attributed`). The member's `train` job that then only moves its outputs (STAGED, no
    GPU) is not counted."""
    return _attributed(
        plan,
        runs,
        groups,
        lambda spec, card, fractions: job_resources(spec, card, fractions, "train").runtime / 60,
        lambda specs, card, fractions: shared_job_resources(specs, card, fractions).runtime / 60,
    )


def compute_table(plan: Any) -> str:
    """Markdown tables of the estimated GPU-hours of a plan's grid (densebench.plan.Plan: every
    run it trains, every training seed; ARTIFACT.md's compute): per strategy the train
    GPU-hours (by the FLOP rule) and first-attempt time limits, each without and with
    `train.share_frozen_backbone` (whatever the config says; a shared job's estimate split over
    its members in proportion to their estimates alone: `train_gpu_hours`), the predict
    GPU-hours, with the totals; then the training jobs without and with sharing."""
    fractions = plan.config["data"]["split_fractions"]
    runs = plan.seed_runs()
    groups = sharing_groups(plan, runs)
    hours = train_gpu_hours(plan, runs, groups)
    limits = train_time_limits(plan, runs, groups)
    lines = [
        "| strategy | runs | train GPU h | train GPU h, shared | predict GPU h "
        "| train time limits (GPU h) | train time limits, shared (GPU h) |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = {strategy: [0, 0.0, 0.0, 0.0, 0.0, 0.0] for strategy in plan.strategies}
    for run in runs:
        spec, card, row = plan.spec(run), plan.registries.datasets[run[0]], rows[run[2]]
        row[0] += 1
        row[1] += hours[run][0]
        row[2] += hours[run][1]
        row[3] += gpu_seconds(spec, card, fractions, "predict") / 3600
        row[4] += limits[run][0]
        row[5] += limits[run][1]

    def cells(name: str, row: list[float]) -> str:
        return (
            f"| {name} | {row[0]} | {row[1]:.0f} | {row[2]:.0f} | {row[3]:.1f} | {row[4]:.0f} "
            f"| {row[5]:.0f} |"
        )

    lines += [cells(strategy, row) for strategy, row in rows.items()]
    total = [sum(column) for column in zip(*rows.values(), strict=True)]
    lines.append(cells("**all**", total))
    members = sum(len(group) for group in groups)
    alone = len(runs) - members
    lines += [
        "",
        "| train jobs | without sharing | with sharing |",
        "|---|---|---|",
        f"| one run each | {len(runs)} | {alone} |",
        f"| shared: a dataset x model's frozen-encoder runs | 0 | {len(groups)} ({members} runs) |",
        f"| **all** | {len(runs)} | {alone + len(groups)} |",
    ]
    return "\n".join(lines)


def memory_table(config: Any, registries: Any, classes_gb: tuple[float, ...] = (80, 141)) -> str:
    """Markdown table of the grid's GPU memory per (model, strategy): the largest training
    estimate over the config's datasets without and with activation checkpointing, and whether
    `auto` checkpoints on one card of each size in `classes_gb` (densebench.memory)."""
    head = " | ".join(f"ckpt on {gb:g} GB" for gb in classes_gb)
    lines = [
        f"| model | strategy | S | train GB | train GB, checkpointing | predict GB | {head} |",
        "|---|---|---|---|---|---|" + "---|" * len(classes_gb),
    ]
    for model in config["models"]:
        for strategy in config["strategies"]:
            specs = [
                build_run_spec(config, dataset, model, strategy, registries)
                for dataset in config["datasets"]
            ]
            spec = max(specs, key=lambda s: memory.estimate(s, "train", False).gb)
            off, on = (memory.estimate(spec, "train", c).gb for c in (False, True))
            predict = max(memory.estimate(s, "predict", False).gb for s in specs)
            marks = " | ".join("yes" if off > gb else "no" for gb in classes_gb)
            lines.append(
                f"| {model} | {strategy} | {spec.input_size} | {off:.1f} | {on:.1f} "
                f"| {predict:.1f} | {marks} |"
            )
    return "\n".join(lines)
