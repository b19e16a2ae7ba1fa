"""The GPU class of each train and predict job, from its run spec and the site's classes.

The site's classes (config `resources.gpus`, smallest first, each with its memory and how SLURM
is asked for it) and the GPU memory model (densebench.memory) give each job the smallest class
whose memory holds its estimate (`gpu_plan`), with activation checkpointing when
`train.grad_checkpointing` is `auto` and the estimate without it exceeds that class. Retries
escalate: attempt 2 turns checkpointing on if it was off, each later attempt (and a prediction's
every retry) asks for the next class. A run that no class holds stops the plan
(`check_gpu_fit`).

Site policy (config `resources`, `policy_of`): `gpu` is `auto` (a GPU for pretrained models,
none for demo models: `is_demo_model`), `always` or `never`. The job's other resources (CPUs,
memory, runtime) are densebench.resources'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from densebench import memory

Stage = Literal["train", "predict"]


DEFAULT_GPUS = ({"name": "gpu-80g", "memory_gb": 80},)
"""The default GPU class list: one 80 GB class requested as a plain `--gpus=1`."""

DEFAULT_POLICY = {"gpu": "auto", "max_runtime": None, "gpus": DEFAULT_GPUS, "max_cpus_per_gpu": 16}
"""The config's `resources` defaults (workflow/schemas/config.schema.yaml)."""


class PlanError(ValueError):
    """A run no GPU class of the site can hold."""


@dataclass(frozen=True)
class GpuClass:
    """One GPU class of the site (config `resources.gpus`): its memory and how SLURM is asked
    for it (at most one of `gpu_model`, `gres`, `constraint`; none: a plain `--gpus=1`)."""

    name: str
    memory_gb: float
    gpu_model: str | None = None
    gres: str | None = None
    constraint: str | None = None


@dataclass(frozen=True)
class GpuPlan:
    """A job's GPU class (None: no GPU), its memory estimate and whether it checkpoints."""

    gpu_class: GpuClass | None
    estimate_gb: float
    checkpointing: bool

    def note(self) -> str:
        """What the job's message and log say, e.g. `1 GPU h100-80g: est. 61 GB with
        checkpointing`."""
        if self.gpu_class is None:
            return "no GPU"
        how = "with" if self.checkpointing else "without"
        return f"1 GPU {self.gpu_class.name}: est. {self.estimate_gb:.0f} GB {how} checkpointing"


NO_GPU = GpuPlan(None, 0.0, False)
"""The plan of a job without a GPU."""


def policy_of(policy: Any) -> dict[str, Any]:
    """The site policy with its defaults filled in."""
    return {**DEFAULT_POLICY, **{k: v for k, v in (policy or {}).items() if v is not None}}


def gpu_classes(policy: Any) -> tuple[GpuClass, ...]:
    """The site's GPU classes, smallest first (config `resources.gpus`), checked."""
    classes = tuple(GpuClass(**dict(c)) for c in policy_of(policy)["gpus"])
    if not classes:
        raise ValueError("config resources.gpus lists no GPU class; give at least one")
    for c in classes:
        if sum(x is not None for x in (c.gpu_model, c.gres, c.constraint)) > 1:
            raise ValueError(
                f"GPU class {c.name}: give at most one of gpu_model, gres and constraint"
            )
    sizes = [c.memory_gb for c in classes]
    if sizes != sorted(sizes):
        raise ValueError(f"config resources.gpus must list classes smallest first: {sizes}")
    return classes


def uses_gpu(spec: Any, policy: Any) -> bool:
    """Whether the run's jobs get a GPU under the site policy."""
    rule = policy_of(policy)["gpu"]
    return rule == "always" or (rule == "auto" and not is_demo_model(spec.model_record))


def run_name(spec: Any) -> str:
    """dataset / model / strategy of a run, as messages name it."""
    return f"{spec.dataset} / {spec.model} / {spec.strategy} (S = {spec.input_size})"


def gpu_plan(spec: Any, stage: Stage, attempt: int = 1, policy: Any = None) -> GpuPlan:
    """The GPU class and checkpointing of a train or predict job at an attempt.

    Training: `grad_checkpointing` auto takes the smallest class holding the estimate with
    checkpointing and turns checkpointing on only if the estimate without it exceeds that
    class; true / false force it. Attempt 2 turns checkpointing on if it was off, every later
    attempt moves one class up (prediction, which never checkpoints, moves up from attempt 2).
    """
    return _class_plan(spec, stage, attempt, policy, lambda c: memory.estimate(spec, stage, c).gb)


def shared_gpu_plan(specs: Any, attempt: int = 1, policy: Any = None) -> GpuPlan:
    """`gpu_plan` of a shared training job (densebench.train.shared) of several frozen-encoder
    runs on one encoder: sized by densebench.memory.shared_estimate."""
    return _class_plan(
        specs[0], "train", attempt, policy, lambda c: memory.shared_estimate(specs, c).gb
    )


def _class_plan(
    spec: Any, stage: Stage, attempt: int, policy: Any, need_gb: Callable[[bool], float]
) -> GpuPlan:
    """`gpu_plan` with the job's estimate in GB given checkpointing (`need_gb`)."""
    setting = spec.train.execution.grad_checkpointing
    if not uses_gpu(spec, policy):
        return GpuPlan(None, 0.0, setting is True and stage == "train")
    classes = gpu_classes(policy)
    checkpointing = stage == "train" and setting is True
    need = need_gb(checkpointing or setting == "auto")
    fits = [i for i, c in enumerate(classes) if c.memory_gb >= need]
    if not fits:
        largest = classes[-1]
        raise PlanError(
            f"run {run_name(spec)}: the {stage} job needs an estimated {need:.0f} GB of GPU "
            f"memory (checkpointing {'off' if stage == 'predict' or setting is False else 'on'}), "
            f"more than the largest GPU class {largest.name} ({largest.memory_gb:g} GB). "
            "Remedy: add a larger class to config resources.gpus, lower train.batch_size, "
            "cap the input with train.max_input_size, or take the run out of the config"
        )
    index = fits[0]
    if stage == "train" and setting == "auto":
        checkpointing = need_gb(False) > classes[index].memory_gb
    steps = attempt - 1
    if stage == "train" and steps > 0 and not checkpointing and setting is not False:
        checkpointing, steps = True, steps - 1
    index = min(index + steps, len(classes) - 1)
    return GpuPlan(classes[index], need_gb(checkpointing), checkpointing)


def retry_note(spec: Any, stage: Stage, attempt: int, policy: Any = None) -> str:
    """What the next attempt of a job changes (for the out-of-memory message)."""
    now, then = gpu_plan(spec, stage, attempt, policy), gpu_plan(spec, stage, attempt + 1, policy)
    if then.checkpointing and not now.checkpointing:
        return f"attempt {attempt + 1} turns activation checkpointing on"
    if then.gpu_class != now.gpu_class:
        assert then.gpu_class is not None
        return (
            f"attempt {attempt + 1} asks for the next GPU class {then.gpu_class.name} "
            f"({then.gpu_class.memory_gb:g} GB)"
        )
    return (
        "no retry can give it more memory (checkpointing is on and it has the largest GPU "
        "class): add a larger class to config resources.gpus or lower train.batch_size"
    )


def check_gpu_fit(specs: Any, policy: Any = None) -> None:
    """Stop the plan before any job if a run's train or predict job fits no GPU class: one
    error naming every such run, its estimate and the remedy."""
    problems = []
    for spec in specs:
        for stage in ("train", "predict"):
            try:
                gpu_plan(spec, stage, 1, policy)
            except PlanError as error:
                problems.append(str(error))
    if problems:
        raise PlanError("\n".join(problems))


def encoder_params(record: Any) -> float:
    """Encoder parameters: the record's `params_m`, else a ViT estimate from its width
    (12 d^2 per block, 24 blocks: ViT-L's 303M at d = 1024), conservative for smaller models."""
    if record.get("params_m") is not None:
        return float(record["params_m"]) * 1e6
    return 12.0 * 24 * float(record["embed_dim"]) ** 2


def is_demo_model(record: Any) -> bool:
    """Whether a model is a CPU demo model: tiny (under 1 M parameters) and built without
    downloaded weights (no `hf_repo`: random or pretrained by the demo's own rule)."""
    return not record.get("hf_repo") and encoder_params(record) < 1e6
