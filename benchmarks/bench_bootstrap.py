"""Benchmark: 1000 bootstrap replicates, 800 images x 22 classes, each definition (<= 0.2 s)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from densebench.evaluate.bootstrap import bootstrap

N_IMAGES = 800
N_CLASSES = 22
REPLICATES = 1000
REPEATS = 5
CONFIGS: tuple[tuple[str, bool], ...] = (("paper", False), ("standard", False), ("standard", True))


def make_stack(seed: int = 0) -> np.ndarray:
    """Return a seeded random (N_IMAGES, N_CLASSES, N_CLASSES) int64 confusion stack."""
    rng = np.random.default_rng(seed)
    stack = rng.integers(0, 2000, size=(N_IMAGES, N_CLASSES, N_CLASSES), dtype=np.int64)
    diag = np.arange(N_CLASSES)
    stack[:, diag, diag] += rng.integers(0, 50_000, size=(N_IMAGES, N_CLASSES))
    return stack


def time_bootstrap(stack: np.ndarray, definitions: str, exclude_background: bool) -> float:
    """Return the best-of-REPEATS wall time (s) of one bootstrap call, after a warm-up."""
    options = {"definitions": definitions, "exclude_background": exclude_background}
    bootstrap(stack, replicates=REPLICATES, seed=42, **options)  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        bootstrap(stack, replicates=REPLICATES, seed=42, **options)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Time bootstrap under each metric definition and print one line per definition."""
    stack = make_stack()
    for definitions, exclude_background in CONFIGS:
        best = time_bootstrap(stack, definitions, exclude_background)
        label = f"{definitions}{' (no background)' if exclude_background else ''}"
        print(
            f"bootstrap [{label}] {REPLICATES} replicates x {N_IMAGES} images x {N_CLASSES} "
            f"classes: best of {REPEATS} = {best * 1000:.1f} ms (target <= 200 ms)"
        )


if __name__ == "__main__":
    main()
