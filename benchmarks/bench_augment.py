"""CPU cost of the paper's training augmentation and the CPUs per GPU it implies (issue 10).

(a) densebench.data.augment on random side x side uint8 images (one process, one thread):
images/s per core, median and p95 ms per image; (b) the images/s a GPU consumes for ViT-L
(uni_v1) frozen and LoRA at the benchmark side, from densebench.resources' FLOP rule
(forward 2 P T (1 + T / 6d), backward per strategy) at its SUSTAINED_TFLOPS, and the cores
needed to keep up (plus one for the main process).
Usage: python benchmarks/bench_augment.py [--images 40] [--side 992]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import cv2
import numpy as np

from densebench.config import ROOT, load_config
from densebench.data.augment import augment_pair, build_train_transform, sample_seed
from densebench.registry import Registries
from densebench.resources import SUSTAINED_TFLOPS, images_per_second
from densebench.spec import build_run_spec


def augment_times(images: int, side: int) -> list[float]:
    """Seconds per augmented image (after one warm-up image)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    mask = rng.integers(0, 4, (side, side), dtype=np.uint8)
    transform = build_train_transform(side)
    augment_pair(transform, image, mask, 0)
    times = []
    for index in range(images):
        start = time.perf_counter()
        augment_pair(transform, image, mask, sample_seed(42, 0, index))
        times.append(time.perf_counter() - start)
    return times


def gpu_demand(side: int) -> dict[str, float]:
    """Training images/s one GPU consumes for ViT-L frozen and LoRA at input side `side`."""
    config = load_config(ROOT / "config/config.yaml")
    config["train"]["input_size"] = side - side % 16
    registries = Registries.load(
        *(ROOT / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
    )
    return {
        strategy: images_per_second(build_run_spec(config, "RINGS", "uni_v1", strategy, registries))
        for strategy in ("frozen", "lora")
    }


def main() -> None:
    """Print the augmentation rate and the CPUs per GPU it implies."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--side", type=int, default=992)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    times = augment_times(args.images, args.side)
    rate = 1.0 / statistics.mean(times)
    p95 = sorted(times)[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    print(
        f"augmentation {args.side}x{args.side}: {rate:.1f} images/s per core; "
        f"median {statistics.median(times) * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms per image"
    )
    for strategy, demand in gpu_demand(args.side).items():
        cores = math.ceil(demand / rate)
        print(
            f"ViT-L (uni_v1) {strategy} at {args.side - args.side % 16} px: GPU consumes "
            f"{demand:.1f} images/s at {SUSTAINED_TFLOPS:.0f} TFLOP/s sustained -> "
            f"{cores} loader cores + 1 main = {cores + 1} CPUs per GPU"
        )


if __name__ == "__main__":
    main()
