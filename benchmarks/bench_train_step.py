"""Overhead of our training loop over a bare forward/backward of the same model and batch.

Compares, on the same model (demo ViT/16 with LoRA and the paper's full-width decoder) and the
same batch, per step:
  bare   : zero_grad, forward, Dice loss, backward, optimizer.step
  step   : Trainer.step (autocast context, GradScaler, unscale, global grad-norm clip, step)
  loop   : Trainer.train_epoch over a zarr store (data loading, augmentation, RNG reseeding)
Target (issue 3): step / bare <= 1.10. Usage: python benchmarks/bench_train_step.py [--size 224]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from densebench.config import ROOT, load_config
from densebench.models.segmenter import build_model
from densebench.registry import Registries
from densebench.spec import build_run_spec
from densebench.train.loop import Trainer, make_loader
from densebench.train.losses import dice_loss


def timed(fn, repeats: int) -> float:
    """Median seconds of fn() over repeats calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_store(registries: Registries, folder: Path, images: int) -> Path:
    """A synthetic nuclei store with `images` training images."""
    from densebench.data.converters import get_converter
    from densebench.data.store import write_store
    from densebench.data.synthetic import write_synthetic_raw

    card = copy.deepcopy(registries.datasets["demo_nuclei"])
    card["synthetic"].update(num_images=images, height=256, width=256)
    card.update(num_images=images, min_side=256)
    write_synthetic_raw(card, folder / "raw")
    samples = get_converter(card["converter"])(folder / "raw", card)
    store = folder / "store.zarr"
    write_store(samples, card, "demo_nuclei", store, split_policy="seeded", seed=0,
                fractions=(0.8, 0.1, 0.1))  # fmt: skip
    return store


def main() -> None:
    """Time bare steps, Trainer steps and the full loop; print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(ROOT / "config/config.yaml")
    config["train"].update(batch_size=args.batch, input_size=args.size, num_workers=0)
    registries = Registries.load(
        *(ROOT / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
    )
    spec = build_run_spec(config, "demo_nuclei", "demo_vit_p16", "lora", registries)
    record = dict(spec.model_record, weights="random")  # timing only: no pretrained snapshot
    spec = dataclasses.replace(spec, model_record=record)
    device = torch.device("cpu")
    model = build_model(spec).train()
    trainer = Trainer(model, spec, device)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, spec.num_classes, (args.batch, args.size, args.size))
    optimizer = trainer.optimizer

    def bare() -> None:
        optimizer.zero_grad(set_to_none=True)
        dice_loss(model(x), y).backward()
        optimizer.step()

    ratios = []
    for _ in range(3):  # interleave to share machine noise
        t_bare = timed(bare, args.repeats)
        t_step = timed(lambda: trainer.step(x, y), args.repeats)
        ratios.append(t_step / t_bare)
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(registries, Path(tmp), 5 * args.batch)
        from densebench.data.dataset import SegmentationSplit

        norm = spec.normalisation
        data = SegmentationSplit(store, "train", args.size, norm.mean, norm.std, True, 0)
        loader = make_loader(data, spec, True, device)
        steps = -(-len(data) // args.batch)
        t_loop = timed(lambda: trainer.train_epoch(loader, 3, 1e-4), 3) / steps
    print(
        f"train step at {args.size}px, batch {args.batch}, {args.threads} threads: bare "
        f"{t_bare * 1e3:.0f} ms, Trainer.step {t_step * 1e3:.0f} ms, step/bare "
        f"{statistics.median(ratios):.3f} (target <= 1.10); full loop incl. data loading and "
        f"augmentation (num_workers 0) {t_loop * 1e3:.0f} ms/step = {t_loop / t_bare:.2f}x bare"
    )


if __name__ == "__main__":
    main()
