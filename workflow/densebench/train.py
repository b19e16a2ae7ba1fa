"""Training of one run: the paper's recipe, per-epoch log, atomic `last` checkpoint and resume.

Adam with coupled weight decay, warmup + cosine LR stepped per epoch, soft Dice loss, global
grad-norm clipping, validation mIoU every epoch with strictly-better model selection. After every
epoch `last.pt` (everything needed to resume) is replaced atomically; a restarted job resumes
from it. At the end `best.pt` holds only the trainable state of the selected epoch.
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
from densebench.atomic import atomic_output
from densebench.data import SegmentationSplit, epoch_order
from densebench.losses import dice_loss
from densebench.models.segmenter import (
    SegmentationModel,
    backbone_fingerprint,
    build_model,
    count_parameters,
    load_trainable_state,
    trainable_state,
)
from densebench.schedule import cosine_period, lr_at

LOG_FIELDS = ("epoch", "lr", "train_loss", "val_mIoU", "images_per_s", "epoch_s", "eta_s")
"""Columns of the per-epoch training log."""


def configure_torch(seed: int, threads: int) -> torch.device:
    """Seed torch, make CPU kernels deterministic, cap threads; return the device."""
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore: int):
    """Per-image confusion matrices (B, C, C), rows = truth, ignore pixels dropped."""
    b = pred.shape[0]
    valid = target != ignore
    flat = (target.clamp(0, num_classes - 1) * num_classes + pred).masked_fill(~valid, -1)
    offsets = torch.arange(b, device=pred.device).view(b, 1, 1) * num_classes**2
    index = (flat + offsets)[valid.expand_as(flat)]
    counts = torch.bincount(index.flatten(), minlength=b * num_classes**2)
    return counts.view(b, num_classes, num_classes)


def loader(dataset: SegmentationSplit, batch: int, order: list[int], workers: int) -> DataLoader:
    """Batches of `dataset` in the given order; workers open the store lazily."""
    return DataLoader(dataset, batch_size=batch, sampler=order, num_workers=workers)


@torch.no_grad()
def validate(model: SegmentationModel, data: SegmentationSplit, spec: dict, device) -> float:
    """Validation mIoU over the summed confusion matrix (the paper's selection metric)."""
    from densebench.metrics import compute_metrics

    model.eval()
    total = torch.zeros(spec["num_classes"], spec["num_classes"], dtype=torch.int64)
    batch = int(spec["train"]["batch_size"])
    for x, y in loader(data, batch, list(range(len(data))), 0):
        pred = model(x.to(device)).argmax(1).cpu()
        total += confusion(pred, y, spec["num_classes"], spec["ignore_index"]).sum(0)
    return float(compute_metrics(total.numpy())["mIoU"])


def save_torch(obj: Any, path: Path) -> None:
    """torch.save to a temporary name, then rename."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def write_log(rows: list[dict], path: Path) -> None:
    """Write the per-epoch log CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_output(path) as tmp:
        tmp.write_text(buffer.getvalue())


def train_run(
    spec: dict[str, Any],
    store: Path,
    out_dir: Path,
    weights_dir: Path | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Train one run into out_dir (best.pt, train_log.csv, provenance.json; last.pt resumes)."""
    cfg = spec["train"]
    seed, epochs = int(cfg["seed"]), int(cfg["epochs"])
    device = configure_torch(seed, threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    norm = spec["normalisation"]
    size = spec["input_size"]
    train_data = SegmentationSplit(store, "train", size, norm["mean"], norm["std"], True, seed)
    val_data = SegmentationSplit(store, "val", size, norm["mean"], norm["std"], False, seed)
    model = build_model(spec, weights_dir).to(device)
    fingerprint = backbone_fingerprint(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    state = {"epoch": 0, "best_score": -1.0, "best_epoch": -1, "best_state": None, "log": []}
    last = out_dir / "last.pt"
    if last.exists():
        state = resume(last, model, optimizer, spec)
        print(
            f"resuming {spec['dataset']}/{spec['model']}/{spec['strategy']} at epoch "
            f"{state['epoch']}",
            flush=True,
        )
    t_max = cosine_period(cfg, spec["protocol"])
    for epoch in range(state["epoch"], epochs):
        start = time.perf_counter()
        lr = lr_at(epoch, cfg["lr"], int(cfg["warmup_epochs"]), t_max)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = train_epoch(model, optimizer, train_data, spec, epoch, device)
        score = validate(model, val_data, spec, device)
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
        write_log(state["log"], out_dir / "train_log.csv")
        save_torch(checkpoint(state, model, optimizer, spec), last)
    return finish(spec, state, model, out_dir, fingerprint)


def train_epoch(model, optimizer, data: SegmentationSplit, spec: dict, epoch: int, device) -> float:
    """One pass over the training split; returns the mean batch loss."""
    cfg = spec["train"]
    torch.manual_seed(int(cfg["seed"]) * 1000 + epoch)  # drop-path etc., resumable per epoch
    data.set_epoch(epoch)
    order = epoch_order(len(data), int(cfg["seed"]), epoch)
    model.train()
    losses = []
    params = [p for p in model.parameters() if p.requires_grad]
    for x, y in loader(data, int(cfg["batch_size"]), order, int(cfg["num_workers"])):
        optimizer.zero_grad(set_to_none=True)
        loss = dice_loss(model(x.to(device)), y.to(device), spec["ignore_index"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float(cfg["grad_clip_norm"]))
        optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def checkpoint(state: dict, model, optimizer, spec: dict) -> dict[str, Any]:
    """Everything needed to resume after the epoch just finished."""
    return {
        "spec": spec,
        "model": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        **state,
    }


def resume(path: Path, model, optimizer, spec: dict) -> dict[str, Any]:
    """Restore model, optimizer and loop state from `last.pt`; refuse another run's file."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved["spec"] != spec:
        raise ValueError(
            f"{path} belongs to a different run configuration; delete it to train from scratch"
        )
    load_trainable_state(model, saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    keys = ("epoch", "best_score", "best_epoch", "best_state", "log")
    return {k: saved[k] for k in keys}


def finish(spec: dict, state: dict, model, out_dir: Path, fingerprint: float) -> dict:
    """Write best.pt and provenance.json for the selected epoch."""
    provenance = {
        "dataset": spec["dataset"],
        "model": spec["model"],
        "strategy": spec["strategy"],
        "protocol": spec["protocol"],
        "best_epoch": state["best_epoch"],
        "best_val_mIoU": state["best_score"],
        "epochs": state["epoch"],
        "parameters": count_parameters(model),
        "adapted_modules": model.adapted_modules,
        "backbone_fingerprint": fingerprint,
        "versions": versions(),
        "git_commit": git_commit(),
        "device": str(next(model.parameters()).device),
    }
    save_torch(
        {"state": state["best_state"], "spec": spec, "provenance": provenance},
        out_dir / "best.pt",
    )
    with atomic_output(out_dir / "provenance.json") as tmp:
        tmp.write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return provenance


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
