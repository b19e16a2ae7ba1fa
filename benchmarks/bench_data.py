"""Data stage throughput: (a) conversion of a synthetic dataset into a zarr store (images/s);
(b) reading training images from the zarr store vs decoding the same images from PNG files
with PIL (1000 x 1000 RGB + mask). Target (issue 5): zarr reads >= 3x faster than PNG decoding.
Usage: python benchmarks/bench_data.py [--images 24] [--side 1000]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from densebench.config import ROOT
from densebench.data.converters import Sample, get_converter
from densebench.data.store import DatasetStore, write_store
from densebench.data.synthetic import write_synthetic_raw
from densebench.registry import Registries


def conversion_rate(registries: Registries, folder: Path, images: int) -> tuple[float, int]:
    """Images per second of convert + validate + write for the synthetic tissue dataset."""
    card = copy.deepcopy(registries.datasets["demo_tissue"])
    card["synthetic"].update(num_images=images, height=512, width=512)
    card.update(num_images=images, min_side=512)
    write_synthetic_raw(card, folder / "raw")
    start = time.perf_counter()
    samples = get_converter(card["converter"])(folder / "raw", card)
    write_store(samples, card, "demo_tissue", folder / "tissue.zarr", split_policy="seeded",
                seed=0, fractions=(0.6, 0.2, 0.2))  # fmt: skip
    return images / (time.perf_counter() - start), 512


def big_store(folder: Path, images: int, side: int) -> tuple[Path, list[Path]]:
    """A store and the same images as PNG files (H&E-like noise texture, 2-class masks)."""
    rng = np.random.default_rng(0)
    card = {"classes": ["background", "nucleus"], "num_images": images, "converter": None}
    pngs, samples = [], []
    for i in range(images):
        base = rng.integers(120, 230, size=(side // 8, side // 8, 3), dtype=np.uint8)
        noise = rng.integers(0, 20, (side, side, 3), dtype=np.uint8)
        image = np.kron(base, np.ones((8, 8, 1), np.uint8)) + noise
        mask = (image[..., 0] > 180).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i}.png")
        Image.fromarray(mask).save(folder / f"{i}_mask.png")
        pngs.append(folder / f"{i}.png")
        samples.append(Sample(str(i), image, mask, f"{i}.png", f"g{i % 3}", None))
    write_store(iter(samples), card, "bench", folder / "big.zarr", split_policy="seeded", seed=0,
                fractions=(0.34, 0.33, 0.33))  # fmt: skip
    return folder / "big.zarr", pngs


def read_rates(store_path: Path, pngs: list[Path], repeats: int = 3) -> tuple[float, float]:
    """Median seconds per image: zarr store read vs PIL PNG decode (image + mask)."""
    store = DatasetStore(store_path)

    def zarr_pass() -> None:
        for i in range(len(store)):
            store.read(i)

    def png_pass() -> None:
        for path in pngs:
            np.asarray(Image.open(path).convert("RGB"))
            np.asarray(Image.open(path.with_name(path.stem + "_mask.png")))

    def timed(fn) -> float:
        fn()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return statistics.median(runs) / len(pngs)

    return timed(zarr_pass), timed(png_pass)


def main() -> None:
    """Print conversion throughput and the zarr/PNG read comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--side", type=int, default=1000)
    args = parser.parse_args()
    registries = Registries.load(
        *(ROOT / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
    )
    with tempfile.TemporaryDirectory() as tmp:
        rate, side = conversion_rate(registries, Path(tmp), args.images)
        store, pngs = big_store(Path(tmp), args.images, args.side)
        zarr_s, png_s = read_rates(store, pngs)
    print(
        f"conversion (synthesize excluded; convert + validate + zarr, {side}x{side}): "
        f"{rate:.1f} images/s; reading {args.side}x{args.side} RGB + mask: zarr "
        f"{zarr_s * 1e3:.1f} ms/image vs PNG+PIL {png_s * 1e3:.1f} ms/image = "
        f"{png_s / zarr_s:.1f}x faster (target >= 3x)"
    )


if __name__ == "__main__":
    main()
