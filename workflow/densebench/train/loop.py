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
        loss = self.loss(logits, y, self.spec.ignore_index)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def train_epoch(self, loader: DataLoader, epoch: int, lr: float) -> float:
        """One pass over the training split at learning rate lr; mean batch loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(int(self.spec.train.seed) * 1000 + epoch)  # drop-path etc.
        loader.sampler.set_epoch(epoch)
        self.model.train()
        data = loader.dataset
        losses = [
            self.step(*device_batch(batch, self.device, data.mean, data.std)) for batch in loader
        ]
        return float(torch.stack(losses).mean())

    @torch.no_grad()
    def validate(self, loader: DataLoader) -> float:
        """Validation mIoU over the summed confusion matrix (the paper's selection metric)."""
        from densebench.evaluate.metrics import compute_metrics

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
        return float(compute_metrics(total.cpu().numpy())["mIoU"])

    def state(self) -> dict[str, Any]:
        """Optimizer and scaler state for `last.pt`."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore optimizer and scaler state."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def write_log(rows: list[dict], path: Path) -> None:
    """Write the per-epoch log CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(buffer.getvalue(), path)


def save_torch(obj: Any, path: Path) -> None:
    """torch.save to a temporary name, then rename."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


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
        state = {"epoch": 0, "best_score": -1.0, "best_epoch": -1, "best_state": None, "log": []}
        last = out_dir / "last.pt"
        if last.exists():
            state = resume(last, model, trainer, spec) or state
        train_loader = make_loader(train_data, spec, True, device, threads)
        val_loader = make_loader(val_data, spec, False, device, threads)
        try:
            state = train_epochs(trainer, state, train_loader, val_loader, last, len(train_data))
        except torch.OutOfMemoryError as error:
            raise SystemExit(oom_message(spec, plan, attempt, policy, device)) from error
    return finish(spec, state, model, out_dir, fingerprint)


def train_epochs(
    trainer: Trainer,
    state: dict[str, Any],
    train_loader: DataLoader,
    val_loader: DataLoader,
    last: Path,
    images: int,
) -> dict[str, Any]:
    """The epochs after `state["epoch"]`; `last.pt` written by the checkpoint clock
    (densebench.train.checkpoints). A stop signal writes the last completed epoch (its host
    copy, when the file is older) and exits."""
    spec, model, cfg = trainer.spec, trainer.model, trainer.spec.train
    epochs = int(cfg.epochs)
    t_max = cosine_period(epochs, cfg.cosine_t_max, spec.fixes["cosine_period_epochs"])
    clock = CheckpointClock(cfg.execution.checkpoint_every_min)
    snapshot = None  # the last completed epoch, on the host, while last.pt is older
    try:
        for epoch in range(state["epoch"], epochs):
            start = time.perf_counter()
            lr = lr_at(epoch, cfg.lr, int(cfg.warmup_epochs), t_max)
            loss = trainer.train_epoch(train_loader, epoch, lr)
            score = trainer.validate(val_loader)
            if score > state["best_score"]:
                state.update(best_score=score, best_epoch=epoch, best_state=trainable_state(model))
            seconds = time.perf_counter() - start
            row = {
                "epoch": epoch,
                "lr": lr,
                "train_loss": loss,
                "val_mIoU": score,
                "images_per_s": images / seconds,
                "epoch_s": seconds,
                "eta_s": seconds * (epochs - epoch - 1),
            }
            state["log"].append(row)
            state["epoch"] = epoch + 1
            print(
                f"epoch {epoch + 1}/{epochs} lr {lr:.2e} loss {loss:.4f} val_mIoU {score:.4f} "
                f"{row['images_per_s']:.1f} img/s eta {row['eta_s']:.0f}s",
                flush=True,
            )
            snapshot = resume_snapshot(trainer, state)
            if clock.due(epoch + 1, epochs) or (trainer.signals and trainer.signals.received):
                save_torch(snapshot, last)
                clock.written()
                snapshot = None
            if trainer.signals is not None:
                trainer.signals.check()
    except StopRequested as stop:
        if snapshot is not None:
            save_torch(snapshot, last)
        print(
            f"stopped by {stop}: {last} holds epoch {state['epoch']} of {epochs}; "
            "the next attempt resumes there",
            flush=True,
        )
        raise SystemExit(stop.exit_code) from None
    return state


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


def finish(spec: RunSpec, state: dict, model, out_dir: Path, fingerprint: float) -> dict:
    """Write best.pt, train_log.csv and provenance.json of the finished run; drop last.pt."""
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
    write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", out_dir / "provenance.json")
    (out_dir / "last.pt").unlink(missing_ok=True)
    return provenance


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
