"""The data feed: loaders over a `SegmentationSplit` and the move of their batches to the device.

Batches travel as uint8 images (B, 3, S, S) and the store's uint8 masks (B, S, S): a quarter
and an eighth of the float32 images / int64 masks they replace, in the workers' shared memory,
the pinned copy and the host-to-device transfer. `device_batch` normalises the images on the
device (`densebench.data.dataset.normalise`, bit-identical to normalising on the CPU) and
widens the masks to int64 there, so the model and the loss see exactly the old numbers.

Workers persist across epochs, run OpenCV single-threaded (their parallelism is the workers
themselves) and open the store lazily. Every item is a pure function of its key (per-sample
augmentation seeds), so batches do not depend on the number of workers.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Sampler

from densebench.data.dataset import SegmentationSplit, epoch_order, normalise

if TYPE_CHECKING:
    from densebench.spec import RunSpec

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
"""Signals that tell a job to stop: SLURM's time limit, preemption or scancel (SIGTERM) and the
slurm profile's early warning (SIGUSR1)."""
QUEUED_BATCHES = 8
"""Batches the workers keep ready in all (at least two per worker): a deep enough queue to ride
out a slow batch (a fog or elastic sample costs 5-10x the mean) at a few tens of MB of uint8."""


class EpochSampler(Sampler):
    """Yields (epoch, position) keys: the epoch's seeded order, or the plain order."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate (workers see it through the keys)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = epoch_order(self.n, self.seed, self.epoch) if self.shuffle else range(self.n)
        return iter([(self.epoch, k) for k in order])

    def __len__(self) -> int:
        return self.n


def loader_workers(num_workers: int | None, threads: int) -> int:
    """Data-loading workers: the configured number, or (null = auto) one per CPU the job was
    given beyond the main process (threads - 1). Results do not depend on it (per-sample seeds)."""
    return max(threads - 1, 0) if num_workers is None else int(num_workers)


def prefetch_factor(workers: int) -> int | None:
    """Batches each worker prepares ahead: QUEUED_BATCHES shared out, at least 2 (None: no
    workers, nothing to prefetch)."""
    return max(2, math.ceil(QUEUED_BATCHES / workers)) if workers > 0 else None


def worker_init(worker_id: int) -> None:
    """Cap OpenCV at one thread in a loader worker: the workers are the parallelism, and one
    pool per worker on every core would oversubscribe the job's CPUs. Ignore the stop signals
    SLURM sends to every process of the job step: the training process saves its last
    completed epoch and exits (densebench.train.checkpoints), and its workers exit with it."""
    import cv2

    cv2.setNumThreads(1)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def make_loader(
    data: SegmentationSplit,
    spec: RunSpec,
    shuffle: bool,
    device: torch.device,
    threads: int = 1,
    batched: bool = True,
) -> DataLoader:
    """A loader over `data` in batches of the run's batch size (batched=False: one item at a
    time, for images of different sizes), pinned for a CUDA device.

    Without workers the items are made in the main process between steps, which then has the
    job's `threads` CPUs to itself: OpenCV gets as many threads (its default would be one per
    core of the machine, not of the job). Items do not depend on OpenCV's thread count."""
    cfg = spec.train
    workers = loader_workers(cfg.execution.num_workers, threads)
    if workers == 0:
        import cv2

        cv2.setNumThreads(max(1, threads))
    return DataLoader(
        data,
        batch_size=int(cfg.batch_size) if batched else None,
        sampler=EpochSampler(len(data), int(cfg.seed), shuffle),
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=prefetch_factor(workers),
        worker_init_fn=worker_init if workers > 0 else None,
        # The loader's own generator: starting its iterator (once, with persistent workers)
        # must not draw from the global RNG that seeds each epoch's drop-path, or a resumed
        # run (whose first iterator starts at a later epoch) would draw other masks.
        generator=torch.Generator().manual_seed(int(cfg.seed)),
        pin_memory=device.type == "cuda",
    )


def device_batch(
    batch: Sequence[torch.Tensor],
    device: torch.device,
    mean: Sequence[float],
    std: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader's (uint8 images, integer masks) on `device`: float32 normalised images and
    int64 masks (the loss and the confusion counts index with them)."""
    images, masks = batch
    images = images.to(device, non_blocking=True)
    masks = masks.to(device, non_blocking=True)
    return normalise(images, mean, std), masks.long()
