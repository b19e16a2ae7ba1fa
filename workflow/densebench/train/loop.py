"""Training of one run: the paper's recipe, per-epoch log, atomic `last` checkpoint and resume.

Adam with coupled weight decay, warmup + cosine LR stepped per epoch, soft Dice loss (the UNet
under `paper`: cross-entropy; densebench.train.losses), fp16 autocast + GradScaler on GPU (full
precision on CPU), global grad-norm clipping, validation mIoU
every epoch with strictly-better model selection. After every epoch `last.pt` (everything needed
to resume: trainable state, optimizer, scaler, selection state, log) replaces the previous one
atomically, and a restarted job resumes from it with identical results: all randomness is
derived from (seed, epoch[, sample]). At the end `best.pt` holds only the trainable state of the
selected epoch, `train_log.csv` the whole log and `provenance.json` the run's record (none of
the job's outputs exists before it finishes: a killed job leaves only `last.pt`, which is no
output, so Snakemake sees nothing incomplete); then
`last.pt` (a resume file of up to a GB) is removed: a finished run never needs it again, since
prediction loads `best.pt`. A job killed after its last epoch resumes straight into that finish.
`last.pt` is kept only while its training identity (`densebench.identity`) is the job's; a
`last.pt` of another recipe is set aside and the run trains from scratch.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from densebench import __version__
from densebench.atomic import atomic_output, remove_stale_in, write_text
from densebench.data.dataset import SegmentationSplit
from densebench.data.loader import device_batch, make_loader
from densebench.evaluate.predict import confusion_matrices
from densebench.gpu_plan import gpu_plan, retry_note, run_name
from densebench.identity import identity_digest
from densebench.models.checkpointing import enable_checkpointing
from densebench.models.segmenter import (
    Segmenter,
    backbone_fingerprint,
    build_model,
    count_parameters,
    load_trainable_state,
    trainable_state,
)
from densebench.runtime import amp_dtype, autocast, configure_torch
from densebench.spec import RunSpec
from densebench.train.checkpoints import CheckpointClock, StopRequested, StopSignals, host_copy
from densebench.train.losses import LOSSES
from densebench.train.schedule import cosine_period, lr_at

LOG_FIELDS = ("epoch", "lr", "train_loss", "val_mIoU", "images_per_s", "epoch_s", "eta_s")
"""Columns of the per-epoch training log."""


class Trainer:
    """The optimisation state of one run and its train / validation steps."""

    def __init__(
        self,
        model: Segmenter,
        spec: RunSpec,
        device: torch.device,
        checkpointing: bool = False,
        signals: StopSignals | None = None,
    ):
        cfg = spec.train
        self.model, self.spec, self.device, self.signals = model, spec, device, signals
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.dtype = amp_dtype(device, spec.fixes["bf16_autocast"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.clip = float(cfg.grad_clip_norm)
        self.loss = LOSSES[cfg.loss]
        self.forward = model
        self.checkpointed = enable_checkpointing(model, spec.model) if checkpointing else []
        if device.type == "cuda":
            if cfg.execution.channels_last:
                model.use_channels_last()
            if cfg.execution.compile:
                self.forward = torch.compile(model)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimisation step; returns the (detached) loss without a device sync."""
        if self.signals is not None:
            self.signals.check()  # a stop signal abandons the epoch before the next step
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.dtype):
            logits = self.forward(x)
        return self._optimise(logits, y)

    def step_on(self, tokens: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """`step` on the tokens of a frozen encoder shared with other runs (computed once,
        under no_grad, by densebench.train.shared): only the run's trainable parts run."""
        if self.signals is not None:
            self.signals.check()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.dtype):
            logits = self.model.decode(tokens, x)
        return self._optimise(logits, y)

    def _optimise(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss, scaled backward, unscale, clip and optimizer step; the detached loss."""
        loss = self.loss(logits, y, self.spec.ignore_index)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def start_epoch(self, epoch: int, lr: float) -> None:
        """Set the epoch's learning rate, seed its random numbers (drop-path etc.) and put the
        model in training mode."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(epoch_seed(self.spec, epoch))
        self.model.train()

    def train_epoch(self, loader: DataLoader, epoch: int, lr: float) -> float:
        """One pass over the training split at learning rate lr; mean batch loss."""
        self.start_epoch(epoch, lr)
        loader.sampler.set_epoch(epoch)
        data = loader.dataset
        losses = [
            self.step(*device_batch(batch, self.device, data.mean, data.std)) for batch in loader
        ]
        return float(torch.stack(losses).mean())

    @torch.no_grad()
    def validate(self, loader: DataLoader) -> float:
        """Validation mIoU over the summed confusion matrix (the paper's selection metric)."""
        self.model.eval()
        c = self.spec.num_classes
        total = torch.zeros(c, c, dtype=torch.int64, device=self.device)
        data = loader.dataset
        for batch in loader:
            x, y = device_batch(batch, self.device, data.mean, data.std)
            with autocast(self.device, self.dtype):
                pred = self.forward(x).argmax(1)
            matrices = confusion_matrices(pred, y, c, self.spec.ignore_index)
            total += matrices.sum(0)
        return mean_iou(total)

    def state(self) -> dict[str, Any]:
        """Optimizer and scaler state for `last.pt`."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore optimizer and scaler state."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def fresh_state() -> dict[str, Any]:
    """The loop state of a run before its first epoch."""
    return {"epoch": 0, "best_score": -1.0, "best_epoch": -1, "best_state": None, "log": []}


def mean_iou(total: torch.Tensor) -> float:
    """mIoU of a summed confusion matrix (the paper's model-selection metric)."""
    from densebench.evaluate.metrics import compute_metrics

    return float(compute_metrics(total.cpu().numpy())["mIoU"])


def epoch_seed(spec: RunSpec, epoch: int) -> int:
    """The seed of an epoch's random numbers outside the data (drop-path etc.)."""
    return int(spec.train.seed) * 1000 + epoch


def write_log(rows: list[dict], path: Path) -> None:
    """Write the per-epoch log CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(buffer.getvalue(), path)


def save_torch(obj: Any, path: Path) -> None:
    """torch.save to a temporary name, then rename. Saved through a file object, so the zip
    archive's inner folder is torch's fixed `archive`, not the temporary file's name (which
    holds the process id): the same state gives the same bytes in any job."""
    with atomic_output(path) as tmp, open(tmp, "wb") as sink:
        torch.save(obj, sink)


def train_run(
    spec: RunSpec,
    store: Path,
    out_dir: Path,
    weights_dir: Path | None = None,
    threads: int = 1,
    attempt: int = 1,
    policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one run into out_dir (best.pt, train_log.csv, provenance.json; last.pt resumes).

    `attempt` and the site `policy` (config `resources`) decide activation checkpointing and
    the GPU class the job was given (densebench.gpu_plan.gpu_plan). A stop signal saves the
    last completed epoch and exits with 128 + its number; running out of GPU memory exits with
    one line naming the run, the estimate, the card and what the retry will change.
    """
    started = time.perf_counter()
    cfg = spec.train
    seed = int(cfg.seed)
    device = configure_torch(seed, threads, cfg.execution.deterministic_algorithms)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_in(out_dir)
    plan = gpu_plan(spec, "train", attempt, policy)
    print(f"attempt {attempt}: {plan.note()}", flush=True)
    norm, size = spec.normalisation, spec.input_size
    train_data = SegmentationSplit(store, "train", size, norm.mean, norm.std, True, seed)
    val_data = SegmentationSplit(store, "val", size, norm.mean, norm.std, False, seed)
    model = build_model(spec, weights_dir).to(device)
    fingerprint = backbone_fingerprint(model)
    with StopSignals() as signals:
        trainer = Trainer(model, spec, device, plan.checkpointing, signals)
        if trainer.checkpointed:
            print(f"activation checkpointing in: {', '.join(trainer.checkpointed)}", flush=True)
        state = fresh_state()
        last = out_dir / "last.pt"
        if last.exists():
            state = resume(last, model, trainer, spec) or state
        train_loader = make_loader(train_data, spec, True, device, threads)
        val_loader = make_loader(val_data, spec, False, device, threads)
        try:
            state = train_epochs(trainer, state, train_loader, val_loader, last, len(train_data))
        except torch.OutOfMemoryError as error:
            raise SystemExit(oom_message(spec, plan, attempt, policy, device)) from error
    outputs = finish(spec, state, model, out_dir, fingerprint, job_record(started))
    (out_dir / "last.pt").unlink(missing_ok=True)
    return outputs


def train_epochs(
    trainer: Trainer,
    state: dict[str, Any],
    train_loader: DataLoader,
    val_loader: DataLoader,
    last: Path,
    images: int,
) -> dict[str, Any]:
    """The epochs after `state["epoch"]` of one run (`run_epochs`)."""

    def train_pass(epoch: int, lr: float, active: list[int]) -> dict[int, float]:
        return {0: trainer.train_epoch(train_loader, epoch, lr)}

    def validate_pass(active: list[int]) -> dict[int, float]:
        return {0: trainer.validate(val_loader)}

    return run_epochs([trainer], [state], [last], images, train_pass, validate_pass)[0]


EpochPass = Callable[[int, float, list[int]], dict[int, float]]
"""(epoch, lr, active runs) -> each active run's mean training loss."""
ValidationPass = Callable[[list[int]], dict[int, float]]
"""(active runs) -> each active run's validation mIoU."""


def run_epochs(
    trainers: list[Trainer],
    states: list[dict[str, Any]],
    lasts: list[Path],
    images: int,
    train_pass: EpochPass,
    validate_pass: ValidationPass,
) -> list[dict[str, Any]]:
    """The remaining epochs of one run, or of the runs of a shared job (all of one recipe):
    a run takes part in an epoch once it has reached it (a run resumed further waits), its
    `last.pt` written by the checkpoint clock (densebench.train.checkpoints). A stop signal
    writes each run's last completed epoch (its host copy, when the file is older) and exits."""
    first = trainers[0]
    spec, cfg = first.spec, first.spec.train
    epochs = int(cfg.epochs)
    t_max = cosine_period(epochs, cfg.cosine_t_max, spec.fixes["cosine_period_epochs"])
    clock = CheckpointClock(cfg.execution.checkpoint_every_min)
    snapshots: list[dict | None] = [None] * len(trainers)  # last epochs not yet in last.pt
    named = len(trainers) > 1
    try:
        for epoch in range(min(s["epoch"] for s in states), epochs):
            start = time.perf_counter()
            active = [i for i, s in enumerate(states) if s["epoch"] == epoch]
            lr = lr_at(epoch, cfg.lr, int(cfg.warmup_epochs), t_max)
            losses = train_pass(epoch, lr, active)
            scores = validate_pass(active)
            seconds = time.perf_counter() - start
            for i in active:
                close_epoch(
                    trainers[i], states[i], epoch, lr, losses[i], scores[i], seconds, images
                )
                tag = f"{trainers[i].spec.strategy}: " if named else ""
                row = states[i]["log"][-1]
                print(
                    f"{tag}epoch {epoch + 1}/{epochs} lr {lr:.2e} loss {losses[i]:.4f} "
                    f"val_mIoU {scores[i]:.4f} {row['images_per_s']:.1f} img/s "
                    f"eta {row['eta_s']:.0f}s",
                    flush=True,
                )
                snapshots[i] = resume_snapshot(trainers[i], states[i])
            signals = first.signals
            if clock.due(epoch + 1, epochs) or (signals and signals.received):
                for i in active:
                    save_torch(snapshots[i], lasts[i])
                    snapshots[i] = None
                clock.written()
            if signals is not None:
                signals.check()
    except StopRequested as stop:
        for snapshot, last, state in zip(snapshots, lasts, states, strict=True):
            if snapshot is not None:
                save_torch(snapshot, last)
            print(
                f"stopped by {stop}: {last} holds epoch {state['epoch']} of {epochs}; "
                "the next attempt resumes there",
                flush=True,
            )
        raise SystemExit(stop.exit_code) from None
    return states


def close_epoch(
    trainer: Trainer,
    state: dict[str, Any],
    epoch: int,
    lr: float,
    loss: float,
    score: float,
    seconds: float,
    images: int,
) -> None:
    """Record a finished epoch of a run: model selection (strictly better validation mIoU
    keeps the trainable state) and its log row."""
    if score > state["best_score"]:
        state.update(best_score=score, best_epoch=epoch, best_state=trainable_state(trainer.model))
    epochs = int(trainer.spec.train.epochs)
    state["log"].append(
        {
            "epoch": epoch,
            "lr": lr,
            "train_loss": loss,
            "val_mIoU": score,
            "images_per_s": images / seconds,
            "epoch_s": seconds,
            "eta_s": seconds * (epochs - epoch - 1),
        }
    )
    state["epoch"] = epoch + 1


def resume_snapshot(trainer: Trainer, state: dict[str, Any]) -> dict[str, Any]:
    """What `last.pt` holds, on the host: spec, trainable state, optimizer and scaler, loop
    state and log (the best state is on the host already and only ever replaced)."""
    rest = {k: v for k, v in state.items() if k != "best_state"}
    return {
        "spec": trainer.spec.to_dict(),
        "model": trainable_state(trainer.model),
        **host_copy(trainer.state()),
        **host_copy(rest),
        "best_state": state["best_state"],
    }


def oom_message(
    spec: RunSpec, plan: Any, attempt: int, policy: dict[str, Any] | None, device: torch.device
) -> str:
    """One line for a training that ran out of GPU memory: run, estimate, card, next step."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        card = f"{props.name} with {props.total_memory / 1e9:.0f} GB"
    else:
        card = f"device {device.type}"
    how = "with" if plan.checkpointing else "without"
    return (
        f"out of GPU memory: run {run_name(spec)}, attempt {attempt}, estimated "
        f"{plan.estimate_gb:.0f} GB {how} activation checkpointing, on {card}; "
        f"{retry_note(spec, 'train', attempt, policy)}"
    )


def resume(path: Path, model, trainer: Trainer, spec: RunSpec) -> dict[str, Any] | None:
    """Restore model, optimizer and loop state from `last.pt` if it is this run's; else None.

    A `last.pt` of another training identity (the recipe or a record changed since it was
    written) is removed, and the run trains from scratch.
    """
    saved = torch.load(path, map_location="cpu", weights_only=False)
    try:
        same = RunSpec.from_dict(saved["spec"]).training_identity() == spec.training_identity()
    except ValueError:  # the spec of another densebench version
        same = False
    if not same:
        print(
            f"{path} was written under another training configuration; training from scratch",
            flush=True,
        )
        path.unlink()
        return None
    load_trainable_state(model, saved["model"])
    trainer.load_state(saved)
    keys = ("epoch", "best_score", "best_epoch", "best_state", "log")
    print(f"resuming from {path} after epoch {saved['epoch']}", flush=True)
    return {k: saved[k] for k in keys}


def job_record(started: float, shared_job: str | None = None, runs: int = 1) -> dict[str, Any]:
    """What a run's provenance.json records of its training job: the job's measured wall
    time since `started` (perf_counter), the shared job's staging folder name and how many
    runs it trained, and the run's share of the device time (wall time / runs, in hours)."""
    wall = time.perf_counter() - started
    return {
        "train_wall_s": round(wall, 1),
        "shared_job": shared_job,
        "shared_runs": runs,
        "device_hours": wall / runs / 3600.0,
    }


def finish(
    spec: RunSpec, state: dict, model, out_dir: Path, fingerprint: float, job: dict[str, Any]
) -> dict:
    """Write best.pt, train_log.csv and provenance.json of the finished run into out_dir.

    best.pt's provenance holds what decides the numbers; provenance.json adds the job's
    measured record (`job_record`) and the training identity's digest (densebench.identity),
    so best.pt is the same bytes whether the run trained alone or in a shared job."""
    provenance = {
        "dataset": spec.dataset,
        "model": spec.model,
        "strategy": spec.strategy,
        "protocol": spec.protocol,
        "fixes": dict(spec.fixes),
        "best_epoch": state["best_epoch"],
        "best_val_mIoU": state["best_score"],
        "epochs": state["epoch"],
        "parameters": count_parameters(model),
        "adapted_modules": model.adapted_modules,
        "backbone_fingerprint": fingerprint,
        "versions": versions(),
        "git_commit": git_commit(),
        "device": device_name(next(model.parameters()).device),
    }
    save_torch(
        {"state": state["best_state"], "spec": spec.to_dict(), "provenance": provenance},
        out_dir / "best.pt",
    )
    write_log(state["log"], out_dir / "train_log.csv")
    record = {**provenance, **job, "training_identity": identity_digest(spec)}
    write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", out_dir / "provenance.json")
    return record


def device_name(device: torch.device) -> str:
    """Human-readable device (GPU model on CUDA)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers."""
    import timm

    return {
        "densebench": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
    }


def git_commit() -> str | None:
    """The workflow's git commit, if it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()
