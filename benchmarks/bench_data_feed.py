"""CPU cost of the training data feed per sample and per core: the former path against the new
one, in the same run (issue 18).

A zarr store of --images synthetic H&E tissue images (densebench.data.tissue, --distinct of them
cycled) of --store-side px is written once; for each training side S in --sides the training
split goes through a DataLoader in the main process (no workers; torch and OpenCV on one thread:
the cost one core pays, which is what one loader worker pays), --epochs epochs, batches of
--batch, the two paths in lockstep on the same keys (same augmentation draws):

- old: the former `SegmentationSplit.__getitem__`, re-implemented here: store read, the stock
  albumentations pipeline (RandomFog blending the whole image per particle), float32 image
  normalised on the CPU, int64 mask, default collation;
- new: `densebench.data.dataset.SegmentationSplit` (uint8 image, uint8 mask, RandomFog via
  `fog_particles`), default collation; its normalisation runs on the device after the transfer
  (`densebench.data.loader.device_batch`), so it is not a loader cost: its CPU time is reported
  apart (normalise_cpu_ms) for a CPU-only run.

Every batch is checked: normalise(new images) must equal the old images and the new masks the
old ones (torch.equal), else the script fails. Also reported per side: the components per sample
(store read, augmentation stock vs with the fast fog, conversion old vs new) and the bytes one
batch ships (images + masks) old vs new. Target: new <= 0.5 x old per core at 992 px.
Writes JSON (--out) and prints a table.
Usage: python benchmarks/bench_data_feed.py [--sides 256 512 992] [--out data_feed.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from densebench.config import ROOT
from densebench.data.augment import augment_pair, build_train_transform, sample_seed
from densebench.data.converters import Sample
from densebench.data.dataset import SegmentationSplit, normalise, use_fast_fog
from densebench.data.loader import EpochSampler
from densebench.data.store import write_store
from densebench.data.tissue import bcss_image
from densebench.registry import Registries

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the paper's ImageNet statistics
TARGET = 0.5
"""New / old cost per core at 992 px that issue 18 asks for."""


class FormerSplit(Dataset):
    """The training items as the former `SegmentationSplit.__getitem__` made them: the stock
    pipeline, a float32 image normalised on the CPU and an int64 mask."""

    def __init__(self, data: SegmentationSplit):
        self.data, self.transform = data, None
        self.mean = torch.tensor(MEAN).view(3, 1, 1) * 255.0
        self.std = torch.tensor(STD).view(3, 1, 1) * 255.0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, k = key
        index = self.data.indices[k]
        image, mask = self.data.store.read(index)
        if self.transform is None:
            self.transform = build_train_transform(self.data.size)
        seed = sample_seed(self.data.seed, epoch, index)
        image, mask = augment_pair(self.transform, image, mask, seed)
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
        msk = torch.from_numpy(np.ascontiguousarray(mask)).long()
        return (img - self.mean) / self.std, msk


def write_tissue_store(path: Path, images: int, distinct: int, side: int) -> Path:
    """A store of `images` synthetic tissue images (`distinct` ones, cycled), all training."""
    registries = Registries.load(
        *(ROOT / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
    )
    card = copy.deepcopy(registries.datasets["demo_tissue"])
    classes = list(card["classes"])
    card.update(num_images=images, min_side=side, converter=None)
    rng = np.random.default_rng(0)
    pairs = [bcss_image(rng, side, side, classes, i % len(classes)) for i in range(distinct)]

    def samples() -> Iterator[Sample]:
        for i in range(images):
            image, mask = pairs[i % distinct]
            yield Sample(f"t{i}", image, mask, f"t{i}.png", f"g{i}", None)

    write_store(samples(), card, "bench", path, split_policy="seeded", seed=0,
                fractions=(1.0, 0.0, 0.0))  # fmt: skip
    return path


def loader(data: Dataset, batch: int) -> DataLoader:
    """A main-process loader over the training keys (shuffled per epoch, like training)."""
    sampler = EpochSampler(len(data), 0, shuffle=True)
    return DataLoader(data, batch_size=batch, sampler=sampler, num_workers=0)


def shipped_bytes(batch: tuple[torch.Tensor, torch.Tensor]) -> int:
    """Bytes of a batch's tensors."""
    return sum(t.numel() * t.element_size() for t in batch)


def timed_next(iterator: Iterator[Any]) -> tuple[Any, float]:
    """The next item and the seconds it took."""
    start = time.perf_counter()
    item = next(iterator)
    return item, time.perf_counter() - start


def lockstep(old: DataLoader, new: DataLoader, epochs: int) -> dict[str, float]:
    """Seconds of both loaders over the same epochs (and of normalising the new batches on the
    CPU), every batch checked for identity; bytes of the largest batch of each."""
    out = {"old": 0.0, "new": 0.0, "normalise": 0.0, "bytes_old": 0, "bytes_new": 0}
    for epoch in range(epochs):
        old.sampler.set_epoch(epoch)
        new.sampler.set_epoch(epoch)
        old_batches, new_batches = iter(old), iter(new)
        for _ in range(len(old)):
            a, t_old = timed_next(old_batches)
            b, t_new = timed_next(new_batches)
            start = time.perf_counter()
            x = normalise(b[0], MEAN, STD)
            out["normalise"] += time.perf_counter() - start
            if not (torch.equal(x, a[0]) and torch.equal(b[1].long(), a[1])):
                raise AssertionError(f"epoch {epoch}: a new batch differs from the old one")
            out["old"] += t_old
            out["new"] += t_new
            out["bytes_old"] = max(out["bytes_old"], shipped_bytes(a))
            out["bytes_new"] = max(out["bytes_new"], shipped_bytes(b))
    return out


def seconds(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """fn(*args) and the seconds it took."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def components(data: SegmentationSplit, samples: int) -> dict[str, float]:
    """Mean ms per sample of each step: store read, augmentation (stock pipeline and with the
    fast fog, same draws, outputs checked equal) and the conversion to tensors (old and new)."""
    stock, fast = build_train_transform(data.size), build_train_transform(data.size)
    use_fast_fog(fast)
    former = FormerSplit(data)
    spent = dict.fromkeys(
        ("read", "augment_stock", "augment_fast", "convert_old", "convert_new"), 0.0
    )
    for n in range(samples):
        epoch, k = divmod(n, len(data))
        index = data.indices[k]
        seed = sample_seed(data.seed, epoch, index)
        (image, mask), t = seconds(data.store.read, index)
        spent["read"] += t
        a, t = seconds(augment_pair, stock, image, mask, seed)
        spent["augment_stock"] += t
        b, t = seconds(augment_pair, fast, image, mask, seed)
        spent["augment_fast"] += t
        if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
            raise AssertionError(f"sample {index}: the fast fog changed the augmentation")
        spent["convert_old"] += seconds(convert_old, former, *b)[1]
        spent["convert_new"] += seconds(convert_new, *b)[1]
    return {f"{k}_ms": 1e3 * v / samples for k, v in spent.items()}


def convert_old(former: FormerSplit, image: np.ndarray, mask: np.ndarray) -> tuple:
    """The former conversion: float32 normalised image, int64 mask."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    return (img - former.mean) / former.std, torch.from_numpy(np.ascontiguousarray(mask)).long()


def convert_new(image: np.ndarray, mask: np.ndarray) -> tuple:
    """The new conversion: uint8 views."""
    return torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(mask)


def measure_side(store: Path, side: int, args: argparse.Namespace) -> dict[str, Any]:
    """The record of one training side."""
    data = SegmentationSplit(store, "train", side, MEAN, STD, augment=True, seed=0)
    former = FormerSplit(data)
    _ = data[(0, 0)], former[(0, 0)]  # builds the transforms (not timed)
    run = lockstep(loader(former, args.batch), loader(data, args.batch), args.epochs)
    samples = args.epochs * len(data)
    old_ms, new_ms = 1e3 * run["old"] / samples, 1e3 * run["new"] / samples
    return {
        "side": side,
        "samples": samples,
        "old_ms_per_sample": old_ms,
        "new_ms_per_sample": new_ms,
        "new_over_old": new_ms / old_ms,
        "normalise_cpu_ms_per_sample": 1e3 * run["normalise"] / samples,
        "new_core_ms_per_megapixel": new_ms / (side * side / 1e6),
        "bytes_per_batch_old": int(run["bytes_old"]),
        "bytes_per_batch_new": int(run["bytes_new"]),
        "components": components(data, min(args.component_samples, samples)),
    }


def table(records: list[dict[str, Any]], batch: int) -> str:
    """A plain-text summary of the records."""
    lines = [
        f"per sample, one core (main process, torch and OpenCV on 1 thread); batch {batch}",
        "side   old ms   new ms  new/old  norm ms  core-ms/Mpx  MB/batch old -> new",
    ]
    for r in records:
        lines.append(
            f"{r['side']:>4} {r['old_ms_per_sample']:>8.1f} {r['new_ms_per_sample']:>8.1f} "
            f"{r['new_over_old']:>8.2f} {r['normalise_cpu_ms_per_sample']:>8.2f} "
            f"{r['new_core_ms_per_megapixel']:>12.1f}  {r['bytes_per_batch_old'] / 1e6:>7.1f} -> "
            f"{r['bytes_per_batch_new'] / 1e6:.1f}"
        )
        parts = ", ".join(f"{k.removesuffix('_ms')} {v:.1f}" for k, v in r["components"].items())
        lines.append(f"      components (ms/sample): {parts}")
    return "\n".join(lines)


def main() -> None:
    """Measure every side, write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sides", nargs="+", type=int, default=[256, 512, 992])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--distinct", type=int, default=4, help="distinct images, cycled")
    parser.add_argument("--store-side", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--component-samples", type=int, default=48)
    parser.add_argument("--out", type=Path, default=Path("data_feed.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = write_tissue_store(
            Path(tmp) / "feed.zarr", args.images, min(args.distinct, args.images), args.store_side
        )
        records = [measure_side(store, side, args) for side in args.sides]
    result = {
        "benchmark": "data_feed",
        "store": {"images": args.images, "side": args.store_side, "distinct": args.distinct},
        "batch": args.batch,
        "epochs": args.epochs,
        "threads": 1,
        "target_new_over_old_at_992": TARGET,
        "cpu": platform.processor() or platform.machine(),
        "versions": {
            "torch": torch.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "sides": records,
        "mean_new_core_ms_per_megapixel": statistics.mean(
            r["new_core_ms_per_megapixel"] for r in records
        ),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(records, args.batch))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
