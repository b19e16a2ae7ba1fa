"""One training job for the frozen-encoder runs of a (dataset, model): one encoder forward pass
per batch, each run's trainable parts trained on its tokens (config `train.share_frozen_backbone`,
densebench.plan.sharing decides which runs join).

The runs share the seed and recipe, so a separate job of each would see the same batches in the
same order with the same augmentations, and its frozen encoder (under torch.no_grad) computes
the same tokens. What differs per run stays per run: its adapters and decoder (drawn from the
random numbers a separate job draws: densebench.models.segmenter.build_shared_models), its
optimizer, learning-rate schedule, gradient scaler, validation, model selection, `last.pt`, and
its stream of random numbers within an epoch (`RngStreams`: the Transformer adapter's drop-path
draws from it). So each run's best.pt, training log (timings apart) and predictions equal a
separate job's byte for byte (tests/train/test_shared.py). A model whose frozen forward draws
random numbers in training mode is refused (densebench.models.stochastic).

The finished runs' outputs go to the staging folder (one subfolder per run folder name), from
which each run's own `train` job takes them (`take_staged`); each run's `last.pt` stays in its
run folder, so a killed shared job resumes every run exactly, and a run resumed further than
the others waits until they reach its epoch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from densebench.atomic import remove_stale_in
from densebench.data.dataset import SegmentationSplit
from densebench.data.loader import device_batch, make_loader
from densebench.evaluate.predict import confusion_matrices
from densebench.gpu_plan import shared_gpu_plan
from densebench.identity import identity_digest
from densebench.models.segmenter import backbone_fingerprint, build_shared_models
from densebench.models.stochastic import random_modules
from densebench.runtime import autocast, configure_torch
from densebench.sharing import TRAINED_FILES, shares_encoder
from densebench.spec import RunSpec
from densebench.train.checkpoints import StopSignals
from densebench.train.loop import (
    Trainer,
    epoch_seed,
    finish,
    fresh_state,
    job_record,
    mean_iou,
    oom_message,
    resume,
    run_epochs,
)


class RngStreams:
    """Each run's own stream of the global random numbers within an epoch: all start from the
    epoch's seed, and a run's steps draw only from its own (CPU and, on a GPU, CUDA)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.states: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def _get(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return torch.get_rng_state(), torch.cuda.get_rng_state() if self.cuda else None

    def reset(self, runs: list[int]) -> None:
        """Start every run's stream at the current state (just seeded for the epoch)."""
        state = self._get()
        self.states = {i: state for i in runs}

    @contextmanager
    def of(self, run: int) -> Iterator[None]:
        """Draw from run `run`'s stream inside the block."""
        cpu, cuda = self.states[run]
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda)
        try:
            yield
        finally:
            self.states[run] = self._get()


def shared_key(spec: RunSpec) -> dict[str, Any]:
    """What runs sharing an encoder forward must have in common: everything of their spec but
    the strategy (same data, batches, augmentations, encoder and recipe)."""
    data = spec.to_dict()
    for key in ("strategy", "strategy_record"):
        data.pop(key, None)
    return data


def check_shareable(specs: list[RunSpec]) -> None:
    """Refuse runs that cannot share one encoder forward: not all frozen-encoder strategies, or
    differing in anything but the strategy."""
    names = ", ".join(s.strategy for s in specs)
    unfrozen = [s.strategy for s in specs if not shares_encoder(s.strategy_record)]
    if unfrozen:
        raise SystemExit(
            f"shared training of {names}: {', '.join(unfrozen)} train the encoder; only "
            "frozen-encoder strategies share its forward pass"
        )
    if len({s.strategy for s in specs}) != len(specs):
        raise SystemExit(f"shared training of {names}: a strategy is given twice")
    first = shared_key(specs[0])
    differ = [s.strategy for s in specs[1:] if shared_key(s) != first]
    if differ:
        raise SystemExit(
            f"shared training of {names}: {', '.join(differ)} differ from {specs[0].strategy} "
            "in more than the strategy (dataset, model, recipe, input size or seed)"
        )


def check_deterministic_encoder(models: list[Any], spec: RunSpec) -> None:
    """Refuse an encoder that draws random numbers in the mode it trains in."""
    if models[0].keep_encoder_eval:
        return
    found = random_modules(models[0].backbone)
    if found:
        raise SystemExit(
            f"shared training of {spec.model} on {spec.dataset}: its encoder draws random "
            f"numbers in training mode ({', '.join(found[:3])}); its frozen-encoder runs must "
            "train separately (set train.share_frozen_backbone: false, or the model's record "
            "sets the rate: densebench.sharing.random_forward should have refused it)"
        )


def train_shared(
    specs: list[RunSpec],
    store: Path,
    out_dirs: list[Path],
    staging: Path,
    weights_dir: Path | None = None,
    threads: int = 1,
    attempt: int = 1,
    policy: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train several frozen-encoder runs of one (dataset, model) on one encoder forward per
    batch: each run's `last.pt` in its folder of `out_dirs`, its finished outputs in
    `staging/<its folder name>/`."""
    started = time.perf_counter()
    check_shareable(specs)
    first = specs[0]
    cfg = first.train
    device = configure_torch(int(cfg.seed), threads, cfg.execution.deterministic_algorithms)
    out_dirs = [Path(d) for d in out_dirs]
    for folder in out_dirs:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_in(folder)
    plan = shared_gpu_plan(specs, attempt, policy)
    runs = ", ".join(s.strategy for s in specs)
    print(f"attempt {attempt}: {plan.note()}; one encoder forward for {runs}", flush=True)
    norm, size = first.normalisation, first.input_size
    train_data = SegmentationSplit(store, "train", size, norm.mean, norm.std, True, int(cfg.seed))
    val_data = SegmentationSplit(store, "val", size, norm.mean, norm.std, False, int(cfg.seed))
    models = [m.to(device) for m in build_shared_models(specs, weights_dir)]
    check_deterministic_encoder(models, first)
    fingerprint = backbone_fingerprint(models[0])
    lasts = [folder / "last.pt" for folder in out_dirs]
    with StopSignals() as signals:
        trainers = [
            Trainer(m, s, device, plan.checkpointing, signals)
            for m, s in zip(models, specs, strict=True)
        ]
        states = []
        for trainer, last in zip(trainers, lasts, strict=True):
            fresh = fresh_state()
            if last.exists():
                fresh = resume(last, trainer.model, trainer, trainer.spec) or fresh
            states.append(fresh)
        train_loader = make_loader(train_data, first, True, device, threads)
        val_loader = make_loader(val_data, first, False, device, threads)
        epochs = SharedEpochs(trainers, device)
        try:
            run_epochs(
                trainers,
                states,
                lasts,
                len(train_data),
                lambda epoch, lr, active: epochs.train(train_loader, epoch, lr, active),
                lambda active: epochs.validate(val_loader, active),
            )
        except torch.OutOfMemoryError as error:
            raise SystemExit(oom_message(first, plan, attempt, policy, device)) from error
    job = job_record(started, staging.name, len(specs))
    records = []
    for spec, state, model, folder in zip(specs, states, models, out_dirs, strict=True):
        staged = staging / folder.name
        staged.mkdir(parents=True, exist_ok=True)
        records.append(finish(spec, state, model, staged, fingerprint, job))
    for last in lasts:
        last.unlink(missing_ok=True)
    return records


class SharedEpochs:
    """The training and validation passes of a shared job: one encoder forward per batch."""

    def __init__(self, trainers: list[Trainer], device: torch.device) -> None:
        self.trainers, self.device = trainers, device
        self.streams = RngStreams(device)

    def train(self, loader: Any, epoch: int, lr: float, active: list[int]) -> dict[int, float]:
        """One pass over the training split for the active runs; each run's mean batch loss."""
        for i in active:
            self.trainers[i].start_epoch(epoch, lr)
        torch.manual_seed(epoch_seed(self.trainers[active[0]].spec, epoch))
        self.streams.reset(active)
        loader.sampler.set_epoch(epoch)
        data, encoder = loader.dataset, self.trainers[active[0]]
        losses: dict[int, list[torch.Tensor]] = {i: [] for i in active}
        for batch in loader:
            x, y = device_batch(batch, self.device, data.mean, data.std)
            with autocast(self.device, encoder.dtype):
                tokens = encoder.model.encode(x)
            for i in active:
                with self.streams.of(i):
                    losses[i].append(self.trainers[i].step_on(tokens, x, y))
        return {i: float(torch.stack(values).mean()) for i, values in losses.items()}

    @torch.no_grad()
    def validate(self, loader: Any, active: list[int]) -> dict[int, float]:
        """Each active run's validation mIoU over its summed confusion matrix."""
        trainers = [self.trainers[i] for i in active]
        for trainer in trainers:
            trainer.model.eval()
        spec = trainers[0].spec
        c = spec.num_classes
        totals = {i: torch.zeros(c, c, dtype=torch.int64, device=self.device) for i in active}
        data = loader.dataset
        for batch in loader:
            x, y = device_batch(batch, self.device, data.mean, data.std)
            with autocast(self.device, trainers[0].dtype):
                tokens = trainers[0].model.encode(x)
            for i in active:
                with autocast(self.device, self.trainers[i].dtype):
                    pred = self.trainers[i].model.decode(tokens, x).argmax(1)
                totals[i] += confusion_matrices(pred, y, c, spec.ignore_index).sum(0)
        return {i: mean_iou(total) for i, total in totals.items()}


def take_staged(spec: RunSpec, staging: Path, out_dir: Path) -> dict[str, Any]:
    """Move a run's outputs from its shared job's staging folder into its run folder, after
    checking they are this run's (its training identity); return its provenance."""
    staged = Path(staging) / Path(out_dir).name
    missing = [name for name in TRAINED_FILES if not (staged / name).exists()]
    if missing:
        raise SystemExit(
            f"{staged}: the shared job left no {', '.join(missing)} for run "
            f"{spec.dataset} / {spec.model} / {spec.strategy}; remedy: delete {staging} and "
            "rerun (the shared job trains again)"
        )
    provenance = json.loads((staged / "provenance.json").read_text(encoding="utf-8"))
    if provenance.get("training_identity") != identity_digest(spec):
        raise SystemExit(
            f"{staged}: trained under another training identity than run {spec.dataset} / "
            f"{spec.model} / {spec.strategy}; remedy: delete {staging} and rerun"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in TRAINED_FILES:
        os.replace(staged / name, out_dir / name)
    if not any(staged.iterdir()):
        staged.rmdir()
    (out_dir / "last.pt").unlink(missing_ok=True)
    print(f"{spec.strategy}: taken from the shared job {staging.name}", flush=True)
    return provenance
