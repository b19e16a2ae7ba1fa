"""Training of one run: the paper's recipe, per-epoch log, atomic `last` checkpoint and resume.

Adam with coupled weight decay, warmup + cosine LR stepped per epoch, soft Dice loss, fp16
autocast + GradScaler on GPU (full precision on CPU), global grad-norm clipping, validation mIoU
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
from torch.utils.data import DataLoader, Sampler

from densebench import __version__
from densebench.atomic import atomic_output, remove_stale_in, write_text
from densebench.data.dataset import SegmentationSplit, epoch_order
from densebench.evaluate.predict import confusion_matrices
from densebench.models.segmenter import (
    SegmentationModel,
    Segmenter,
    backbone_fingerprint,
    build_model,
    count_parameters,
    load_trainable_state,
    trainable_state,
)
from densebench.spec import Execution, RunSpec
from densebench.train.losses import dice_loss
from densebench.train.runtime import amp_dtype, autocast, configure_torch
from densebench.train.schedule import cosine_period, lr_at

LOG_FIELDS = ("epoch", "lr", "train_loss", "val_mIoU", "images_per_s", "epoch_s", "eta_s")
"""Columns of the per-epoch training log."""


class EpochSampler(Sampler):
    """Yields (epoch, position) keys: the epoch's seeded order, or the plain order."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate (workers see it through the keys)."""
        self.epoch = epoch

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch) if self.shuffle else range(self.n)
        return iter([(self.epoch, k) for k in order])

    def __len__(self) -> int:
        return self.n


def loader_workers(num_workers: int | None, threads: int) -> int:
    """Data-loading workers: the configured number, or (null = auto) one per CPU the job was
    given beyond the main process (threads - 1). Results do not depend on it (per-sample seeds)."""
    return max(threads - 1, 0) if num_workers is None else int(num_workers)


def make_loader(
    data: SegmentationSplit, spec: RunSpec, shuffle: bool, device, threads: int = 1
) -> DataLoader:
    """A loader whose workers persist across epochs and open the store lazily."""
    cfg = spec.train
    workers = loader_workers(cfg.execution.num_workers, threads)
    sampler = EpochSampler(len(data), int(cfg.seed), shuffle)
    return DataLoader(
        data,
        batch_size=int(cfg.batch_size),
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )


class Trainer:
    """The optimisation state of one run and its train / validation steps."""

    def __init__(self, model: Segmenter, spec: RunSpec, device: torch.device):
        cfg = spec.train
        self.model, self.spec, self.device = model, spec, device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.dtype = amp_dtype(device, spec.fixes["bf16_autocast"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.clip = float(cfg.grad_clip_norm)
        self.forward = model
        if device.type == "cuda":
            prepare_for_gpu(model, cfg.execution)
            if cfg.execution.compile:
                self.forward = torch.compile(model)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimisation step; returns the (detached) loss without a device sync."""
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.dtype):
            logits = self.forward(x)
        loss = dice_loss(logits, y, self.spec.ignore_index)
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
        losses = [
            self.step(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
            for x, y in loader
        ]
        return float(torch.stack(losses).mean())

    @torch.no_grad()
    def validate(self, loader: DataLoader) -> float:
        """Validation mIoU over the summed confusion matrix (the paper's selection metric)."""
        from densebench.evaluate.metrics import compute_metrics

        self.model.eval()
        c = self.spec.num_classes
        total = torch.zeros(c, c, dtype=torch.int64, device=self.device)
        for x, y in loader:
            with autocast(self.device, self.dtype):
                pred = self.forward(x.to(self.device)).argmax(1)
            matrices = confusion_matrices(pred, y.to(self.device), c, self.spec.ignore_index)
            total += matrices.sum(0)
        return float(compute_metrics(total.cpu().numpy())["mIoU"])

    def state(self) -> dict[str, Any]:
        """Optimizer and scaler state for `last.pt`."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore optimizer and scaler state."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def prepare_for_gpu(model: Segmenter, execution: Execution) -> None:
    """channels_last for the convolutional parts; checkpointing in a trainable encoder (a
    PFM's: the UNet baseline has no transformer encoder to checkpoint)."""
    if execution.channels_last:
        model.use_channels_last()
    if not isinstance(model, SegmentationModel):
        return
    if execution.grad_checkpointing and model.encoder_trains:
        encoder = model.backbone.encoder
        if hasattr(encoder, "set_grad_checkpointing"):  # timm
            encoder.set_grad_checkpointing(True)
        elif hasattr(encoder, "gradient_checkpointing_enable"):  # transformers
            encoder.gradient_checkpointing_enable()


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
) -> dict[str, Any]:
    """Train one run into out_dir (best.pt, train_log.csv, provenance.json; last.pt resumes)."""
    cfg = spec.train
    seed, epochs = int(cfg.seed), int(cfg.epochs)
    device = configure_torch(seed, threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_in(out_dir)
    norm, size = spec.normalisation, spec.input_size
    train_data = SegmentationSplit(store, "train", size, norm.mean, norm.std, True, seed)
    val_data = SegmentationSplit(store, "val", size, norm.mean, norm.std, False, seed)
    model = build_model(spec, weights_dir).to(device)
    fingerprint = backbone_fingerprint(model)
    trainer = Trainer(model, spec, device)
    state = {"epoch": 0, "best_score": -1.0, "best_epoch": -1, "best_state": None, "log": []}
    last = out_dir / "last.pt"
    if last.exists():
        state = resume(last, model, trainer, spec) or state
    train_loader = make_loader(train_data, spec, True, device, threads)
    val_loader = make_loader(val_data, spec, False, device, threads)
    t_max = cosine_period(epochs, cfg.cosine_t_max, spec.fixes["cosine_period_epochs"])
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
            "images_per_s": len(train_data) / seconds,
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
        save_torch(
            {"spec": spec.to_dict(), "model": trainable_state(model), **trainer.state(), **state},
            last,
        )
    return finish(spec, state, model, out_dir, fingerprint)


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
