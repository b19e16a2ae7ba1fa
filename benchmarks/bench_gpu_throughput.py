"""GPU training throughput (images/s) and peak memory per model and strategy.

Builds each registry model with its real architecture and random weights (no download), the
paper's decoder and each strategy, and times Trainer.step (the production training step:
autocast, GradScaler, clipping) on random batches. Results go to a CSV and stdout.
Usage (on a GPU machine):
  python benchmarks/bench_gpu_throughput.py --out gpu_throughput.csv \
      [--models uni_v1 uni_v2 ...] [--strategies frozen lora ...] [--size 448] [--batch 8]
      [--steps 10] [--bf16] [--compile] [--grad-checkpointing]
On a CPU it runs too (for a smoke test: --device cpu --models demo_vit_p16 --size 64 --steps 1).
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import replace
from pathlib import Path

import torch

from densebench.config import ROOT, load_config
from densebench.models.segmenter import build_model, count_parameters
from densebench.registry import Registries
from densebench.spec import RunSpec, build_run_spec
from densebench.train.loop import Trainer

TIMM_PFMS = ("lunit_vits8", "uni_v1", "kaiko-vitl14", "virchow_v2", "uni_v2", "hoptimus_0")
"""Paper models buildable from timm alone, from 22M to 1.1B parameters."""
STRATEGIES = ("frozen", "lora", "dora", "cnn_adapter", "transformer_adapter")
FIELDS = ("model", "strategy", "device", "dtype", "size", "batch", "trainable_m", "total_m",
          "step_ms", "images_per_s", "peak_mem_gib")  # fmt: skip


def measure(spec: RunSpec, device: torch.device, steps: int) -> dict:
    """Time Trainer.step on random batches; return one result row."""
    record = dict(spec.model_record, weights="random")
    model = build_model(replace(spec, model_record=record)).to(device)
    trainer = Trainer(model, spec, device)
    batch, size = spec.train.batch_size, spec.input_size
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, spec.num_classes, (batch, size, size), device=device)
    model.train()
    trainer.step(x, y)  # warm-up (and compilation)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(x, y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    counts = count_parameters(model)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {
        "model": spec.model,
        "strategy": spec.strategy,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "dtype": str(trainer.dtype).replace("torch.", "") if trainer.dtype else "float32",
        "size": size,
        "batch": batch,
        "trainable_m": round(counts["trainable"] / 1e6, 2),
        "total_m": round(counts["total"] / 1e6, 2),
        "step_ms": round(seconds * 1e3, 1),
        "images_per_s": round(batch / seconds, 2),
        "peak_mem_gib": round(peak, 2),
    }


def main() -> None:
    """Measure every requested (model, strategy) and write the CSV."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(TIMM_PFMS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--bf16", action="store_true", help="the bf16_autocast fix")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("gpu_throughput.csv"))
    args = parser.parse_args()
    config = load_config(ROOT / "config/config.yaml")
    config["fixes"]["bf16_autocast"] = args.bf16
    config["train"].update(batch_size=args.batch, compile=args.compile,
                           grad_checkpointing=args.grad_checkpointing)  # fmt: skip
    registries = Registries.load(
        *(ROOT / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
    )
    registries.check_names({"models": args.models, "strategies": args.strategies})
    device = torch.device(args.device)
    rows = []
    for model in args.models:
        for strategy in args.strategies:
            spec = build_run_spec(config, "GlaS", model, strategy, registries)
            spec = replace(spec, input_size=args.size if model != "musk" else 384)
            try:
                row = measure(spec, device, args.steps)
            except torch.OutOfMemoryError:
                row = {"model": model, "strategy": strategy, "step_ms": "OOM"}
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append(row)
            print(", ".join(f"{k}={row.get(k, '')}" for k in FIELDS), flush=True)
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
