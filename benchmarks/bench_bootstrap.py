"""Benchmark: 1000 bootstrap replicates over 800 images x 22 classes (target <= 0.2 s)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from densebench.metrics import bootstrap

N_IMAGES = 800
N_CLASSES = 22
REPLICATES = 1000
REPEATS = 5


def make_stack(seed: int = 0) -> np.ndarray:
    """Return a seeded random (N_IMAGES, N_CLASSES, N_CLASSES) int64 confusion stack."""
    rng = np.random.default_rng(seed)
    stack = rng.integers(0, 2000, size=(N_IMAGES, N_CLASSES, N_CLASSES), dtype=np.int64)
    diag = np.arange(N_CLASSES)
    stack[:, diag, diag] += rng.integers(0, 50_000, size=(N_IMAGES, N_CLASSES))
    return stack


def main() -> None:
    """Time bootstrap (best of REPEATS) and print one line."""
    stack = make_stack()
    bootstrap(stack, replicates=REPLICATES, seed=42)  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        bootstrap(stack, replicates=REPLICATES, seed=42)
        times.append(time.perf_counter() - start)
    print(
        f"bootstrap {REPLICATES} replicates x {N_IMAGES} images x {N_CLASSES} classes: "
        f"best of {REPEATS} = {min(times) * 1000:.1f} ms (target <= 200 ms)"
    )


if __name__ == "__main__":
    main()
