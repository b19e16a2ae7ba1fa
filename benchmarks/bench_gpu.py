"""Training throughput, GPU memory, MFU and data wait of real architectures on one GPU (issue 18).

On a GPU machine, in the repository's environment (no download; about 3 minutes on an H100 by
its FLOPs, at most 8: `--budget-s` stops starting cells after 7):

    python benchmarks/bench_gpu.py --out gpu.json

Each cell (model, input side, strategy) runs the production training path with random weights
(`weights: random`; the registry's real architectures: uni_v1, a ViT-L/16, and hoptimus_0, a
ViT-g/14 with 4 registers; strategies frozen, lora, cnn_adapter, transformer_adapter) at batch
size 8 under the paper's fp16 autocast: `densebench.runtime.configure_torch`, the job's
GPU plan (`densebench.gpu_plan.gpu_plan` for a site of one class, this card: it turns
activation checkpointing on as a job's `auto` does), `densebench.models.segmenter.build_model`,
`densebench.train.loop.Trainer` and its `train_epoch` over `densebench.data.loader.make_loader`
on a `SegmentationSplit` of a zarr store written first (64 synthetic H&E images of 1024 px, 8
distinct; the paper's augmentation; uint8 batches normalised on the device), with the job's
loader workers (`--workers`, default min(16, CPUs - 1)). The input side is the patch multiple
nearest to each of `--sizes` (448 and 992: 448 / 992 for patch 16, 448 / 994 for patch 14).
Models are built with the GPU as torch's default device: a ViT-g's random init on the CPU would
take longer than its benchmark.

Per cell (`--warmup` steps, then `--steps` timed ones; cells cheapest first) the JSON record has:
training images/s and ms per step; the data-wait share (time blocked on the loader over the
timed wall time: the fp16 GradScaler syncs every step, so it is time the GPU waits for data);
peak `torch.cuda.max_memory_allocated` (and reserved) beside the memory model's estimate
(`densebench.memory.estimate`; GB = 1e9 bytes) and whether checkpointing was on; MFU, the
resource rule's model FLOPs (`densebench.resources.forward_flops` x (1 + backward_factor)) x
images/s over the card's dense fp16/bf16 peak (H100 SXM / H200 989, H100 PCIe 756, A100 312
TFLOP/s by device name, or `--peak-tflops`; null when unknown, as on a CPU); and HFU, the same
with the FLOPs torch's FlopCounterMode counted in the first warm-up step (matrix products,
convolutions, attention of encoder, adapters and decoder, recomputation included). A cell out
of GPU memory is recorded with its estimate; once `--budget-s` has passed since the start, the
remaining cells are recorded as skipped. The JSON (device, torch version, settings, records) is
rewritten after every cell; a table is printed at the end.

CPU smoke test (tests/test_benchmarks.py: demo models, every strategy, a tiny store, full
precision as the loop runs on a CPU; about 10 s):

    python benchmarks/bench_gpu.py --smoke --out smoke.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from densebench import memory
from densebench.atomic import write_text
from densebench.config import ROOT, load_config
from densebench.data.converters import Sample
from densebench.data.dataset import SegmentationSplit
from densebench.data.loader import make_loader
from densebench.data.store import write_store
from densebench.data.tissue import bcss_image
from densebench.gpu_plan import PlanError, gpu_plan
from densebench.models.segmenter import build_model, count_parameters
from densebench.registry import Registries
from densebench.resources import backward_factor, forward_flops
from densebench.runtime import configure_torch
from densebench.spec import RunSpec, build_run_spec
from densebench.train.loop import Trainer

MODELS = ("uni_v1", "hoptimus_0")
"""ViT-L/16 (303 M parameters) and ViT-g/14 + 4 registers (1.1 B): the paper's size range."""
STRATEGIES = ("frozen", "lora", "cnn_adapter", "transformer_adapter")
SIZES = (448, 992)
DATASET = "RINGS"
"""The card the runs are specs of (3 classes, images of 1500 px: the paper's 992 / 994 px)."""
SMOKE = {
    "models": ["demo_vit_p16", "demo_vit_p14_reg4"],
    "sizes": [30],
    "batch": 2,
    "steps": 2,
    "warmup": 1,
    "workers": 0,
    "store_images": 4,
    "store_side": 48,
}
"""Defaults of `--smoke`: a CPU run of every strategy on the demo models in seconds (S = 32 for
patch 16, 28 for patch 14: sides the CNN adapter's skips take; the 2 batches of the store's split
run out, so the feed goes on into the next epoch). It loads in the main process: a worker beside
the main process's torch threads oversubscribes a small CI machine (steps then take seconds)."""
DISTINCT_IMAGES = 8
"""Distinct tissue images the store cycles through (rendering one of 1024 px takes ~0.5 s)."""
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0))
"""Dense fp16 / bf16 tensor-core peak per card, by a part of its torch device name (first
match): H100 SXM 989, H100 PCIe 756, H200 989, A100 312 TFLOP/s."""


@dataclass
class Cell:
    """One (model, side, strategy) measurement and its run spec and plan."""

    spec: RunSpec
    checkpointing: bool
    estimate_gb: float
    fits: bool

    @property
    def flops_per_image(self) -> float:
        """Model training FLOPs of one image (forward x (1 + backward), no recomputation)."""
        return forward_flops(self.spec) * (1.0 + backward_factor(self.spec.strategy_record))

    @property
    def cost(self) -> float:
        """FLOPs of one image as run: checkpointing recomputes the encoder's forward pass."""
        return self.flops_per_image + (forward_flops(self.spec) if self.checkpointing else 0.0)


class TimedFeed:
    """What `Trainer.train_epoch` iterates: `warmup + steps` batches of a loader (continuing in
    the next epoch's order when the split runs out), timing the waits for each batch. The clock
    starts, after a device sync, when the first timed batch is asked for. The first warm-up
    step runs under torch's FlopCounterMode: `counted` holds the FLOPs it executed (matrix
    products, convolutions and attention, recomputation included; None without warm-up)."""

    def __init__(self, loader: Any, warmup: int, steps: int, device: torch.device):
        self.loader, self.warmup, self.steps, self.device = loader, warmup, steps, device
        self.wait, self.start = 0.0, 0.0
        self.counted: int | None = None
        self._counter: FlopCounterMode | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)  # sampler, dataset, ... as train_epoch reads them

    def __len__(self) -> int:
        return self.warmup + self.steps

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._batches()
        finally:
            self._stop_counting()

    def _batches(self) -> Iterator[Any]:
        epoch, batches = self.loader.sampler.epoch, None
        for index in range(len(self)):
            if index == 1:
                self._stop_counting()  # the first step has run
            if index == self.warmup:
                synchronize(self.device)
                self.wait, self.start = 0.0, time.perf_counter()
            begin = time.perf_counter()
            batch = next(batches, None) if batches is not None else None
            if batch is None:  # first batch, or the split ran out: the next epoch
                if batches is not None:
                    epoch += 1
                    self.loader.sampler.set_epoch(epoch)
                batches = iter(self.loader)
                batch = next(batches)
            self.wait += time.perf_counter() - begin
            if index == 0 and self.warmup > 0:
                self._counter = FlopCounterMode(display=False)
                self._counter.__enter__()
            yield batch

    def _stop_counting(self) -> None:
        """Leave the FLOP counter, if in it, and keep its total."""
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.counted, self._counter = self._counter.get_total_flops(), None


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def nearest_multiple(side: int, patch: int) -> int:
    """The multiple of the patch nearest to `side` (ties down), at least one patch."""
    return max(patch, patch * int(np.floor(side / patch + 0.5 - 1e-9)))


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    """The card's dense fp16/bf16 peak FLOP/s: the override, the table's, or None (unknown)."""
    if override_tflops is not None:
        return override_tflops * 1e12
    for part, tflops in PEAK_TFLOPS:
        if part.lower() in device_name.lower():
            return tflops * 1e12
    return None


def mfu(flops_per_image: float, images_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved model FLOP/s over the peak (None without a peak)."""
    return None if peak is None else flops_per_image * images_per_s / peak


def device_name(device: torch.device) -> str:
    """The torch name of the card, or `cpu`."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def site_policy(device: torch.device) -> dict[str, Any] | None:
    """A site of one GPU class, this card (None on the CPU: the config's defaults)."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    return {"gpus": [{"name": props.name, "memory_gb": props.total_memory / 1e9}]}


def write_bench_store(card: dict[str, Any], path: Path, images: int, side: int) -> None:
    """A zarr store of `images` synthetic H&E tissue images of side x side px with masks of the
    card's classes (densebench.data.tissue; DISTINCT_IMAGES of them, cycled), all training."""
    classes = list(card["classes"])
    card = {**card, "num_images": images, "min_side": side, "converter": None}
    rng = np.random.default_rng(0)
    distinct = min(images, DISTINCT_IMAGES)
    pairs = [bcss_image(rng, side, side, classes, i % len(classes)) for i in range(distinct)]
    samples = (
        Sample(f"bench{i}", *pairs[i % distinct], f"bench{i}.png", f"g{i}", None)
        for i in range(images)
    )
    write_store(samples, card, "bench", path, split_policy="seeded", seed=0,
                fractions=(1.0, 0.0, 0.0))  # fmt: skip


def make_cells(
    args: argparse.Namespace, config: dict[str, Any], registries: Registries, policy: Any
) -> list[Cell]:
    """Every requested cell with its plan, cheapest (training FLOPs per image) first."""
    cells = []
    for model in args.models:
        record = registries.models[model] = {**registries.models[model], "weights": "random"}
        for side in args.sizes:
            config["train"]["input_size"] = nearest_multiple(side, int(record["patch_size"]))
            for strategy in args.strategies:
                spec = build_run_spec(config, DATASET, model, strategy, registries)
                try:
                    plan = gpu_plan(spec, "train", 1, policy)
                    checkpointing, fits = plan.checkpointing, True
                except PlanError:
                    checkpointing, fits = True, False
                estimate = memory.estimate(spec, "train", checkpointing).gb
                cells.append(Cell(spec, checkpointing, estimate, fits))
    return sorted(cells, key=lambda c: c.cost)


def base_record(cell: Cell, status: str) -> dict[str, Any]:
    """The identifying fields and plan of a cell's record."""
    spec = cell.spec
    return {
        "model": spec.model,
        "arch": spec.model_record["arch"],
        "strategy": spec.strategy,
        "size": spec.input_size,
        "batch": spec.train.batch_size,
        "status": status,
        "checkpointing": cell.checkpointing,
        "estimate_gb": round(cell.estimate_gb, 2),
        "model_gflop_per_image": float(f"{cell.flops_per_image / 1e9:.4g}"),
    }


def measure(
    cell: Cell, store: Path, device: torch.device, threads: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Train `warmup + steps` batches of the cell through the production path; its record."""
    spec, norm, seed = cell.spec, cell.spec.normalisation, int(cell.spec.train.seed)
    data = SegmentationSplit(store, "train", spec.input_size, norm.mean, norm.std, True, seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.device(device):
        model = build_model(spec).to(device)
    trainer = Trainer(model, spec, device, cell.checkpointing)
    feed = TimedFeed(
        make_loader(data, spec, True, device, threads), args.warmup, args.steps, device
    )
    loss = trainer.train_epoch(feed, 0, float(spec.train.lr))
    synchronize(device)
    seconds = time.perf_counter() - feed.start
    rate = args.steps * spec.train.batch_size / seconds
    counted = None if feed.counted is None else feed.counted / spec.train.batch_size
    cuda = device.type == "cuda"
    return {
        **base_record(cell, "ok"),
        "dtype": str(trainer.dtype).removeprefix("torch.") if trainer.dtype else "float32",
        "checkpointed_modules": len(trainer.checkpointed),
        "trainable_m": round(count_parameters(model)["trainable"] / 1e6, 3),
        "images_per_s": round(rate, 3),
        "step_ms": round(seconds / args.steps * 1e3, 2),
        "data_wait_share": round(min(1.0, feed.wait / seconds), 4),
        "peak_gb": round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if cuda else None,
        "reserved_gb": round(torch.cuda.max_memory_reserved(device) / 1e9, 2) if cuda else None,
        "counted_gflop_per_image": None if counted is None else float(f"{counted / 1e9:.4g}"),
        "mfu": mfu(cell.flops_per_image, rate, args.peak),
        "hfu": None if counted is None else mfu(counted, rate, args.peak),
        "loss": round(loss, 5),
    }


def run_cell(
    cell: Cell, store: Path, device: torch.device, threads: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The cell's record: measured, out of memory, or not fitting the card by the plan."""
    if not cell.fits:
        return {**base_record(cell, "no_fit"), "error": "no GPU class holds the estimate"}
    try:
        return measure(cell, store, device, threads, args)
    except torch.OutOfMemoryError as error:
        peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
        return {**base_record(cell, "oom"), "peak_gb": peak, "error": str(error).splitlines()[0]}
    finally:
        gc.collect()  # the model, optimizer and loader workers of the cell
        if device.type == "cuda":
            torch.cuda.empty_cache()


def percent(value: float | None) -> str:
    """A share as a percentage, or `-`."""
    return "-" if value is None else f"{100 * value:.1f}"


def table(records: list[dict[str, Any]]) -> str:
    """A plain-text table of the records."""
    head = ("model", "S", "strategy", "status", "ckpt", "img/s", "ms/step", "wait%",
            "peak GB", "est GB", "MFU%", "HFU%")  # fmt: skip
    rows = [head]
    for r in records:
        rows.append((
            r["model"], str(r["size"]), r["strategy"], r["status"], "yes" if r["checkpointing"]
            else "no", str(r.get("images_per_s", "-")), str(r.get("step_ms", "-")),
            percent(r.get("data_wait_share")), str(r.get("peak_gb") or "-"),
            str(r["estimate_gb"]), percent(r.get("mfu")), percent(r.get("hfu")),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line settings (`--smoke` changes the defaults to SMOKE's)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=min(16, (os.cpu_count() or 2) - 1))
    parser.add_argument("--store-images", type=int, default=64)
    parser.add_argument("--store-side", type=int, default=1024)
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--out", type=Path, default=Path("gpu.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run: " + str(SMOKE))
    if parser.parse_args(argv).smoke:
        parser.set_defaults(**SMOKE)  # explicit options still win
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure every cell within the budget; write the JSON after each and print the table."""
    start = time.perf_counter()
    args = parse_args(argv)
    threads = max(0, args.workers) + 1  # a job of `threads` CPUs: threads - 1 loader workers
    config = load_config(ROOT / "config/config.yaml")
    config["train"].update(batch_size=args.batch, num_workers=None)
    registries = Registries.load(
        *(ROOT / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
    )
    registries.check_names({"models": args.models, "strategies": args.strategies})
    device = configure_torch(int(config["train"]["seed"]), threads)
    args.peak = peak_flops(device_name(device), args.peak_tflops)
    cells = make_cells(args, config, registries, site_policy(device))
    result = {
        "device": device_name(device),
        "torch": torch.__version__,
        "peak_tflops": None if args.peak is None else args.peak / 1e12,
        "workers": threads - 1,
        "steps": args.steps,
        "warmup": args.warmup,
        "budget_s": args.budget_s,
        "records": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.zarr"
        write_bench_store(registries.datasets[DATASET], store, args.store_images, args.store_side)
        result["store"] = {"images": args.store_images, "side": args.store_side,
                           "ready_at_s": round(time.perf_counter() - start, 1)}  # fmt: skip
        for cell in cells:
            if time.perf_counter() - start > args.budget_s:
                record = {**base_record(cell, "skipped"), "error": "over --budget-s"}
            else:
                record = run_cell(cell, store, device, threads, args)
            result["records"].append(record)
            result["elapsed_s"] = round(time.perf_counter() - start, 1)
            write_text(json.dumps(result, indent=2) + "\n", args.out)
            print(f"[{result['elapsed_s']:6.1f} s] {record['model']} S={record['size']} "
                  f"{record['strategy']}: {record['status']}", flush=True)  # fmt: skip
    print(table(result["records"]))
    print(f"{result['device']}, torch {result['torch']}: {result['elapsed_s']} s -> {args.out}")


if __name__ == "__main__":
    main()
