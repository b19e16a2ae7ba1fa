"""Tiny raw trees in each dataset's real on-disk layout (one module per dataset).

Each module `<dataset>.py` defines `make_raw(root: Path, card: dict) -> None`, which writes a few
small files exactly as the dataset's archive extracts (folder and file names, .mat keys, npy
shapes, hdf5 groups, palette / 0-255 masks), and `corrupt_mask(root: Path) -> Path`, which
damages one label file of such a tree (out-of-range value, wrong shape or undecodable) and
returns its path. Optional: `RGBA`, the image(s) stored with an alpha channel, and
`CORRUPT_DETAIL`, what the error about the damaged file must also say (the bad value or record).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import numpy as np

from densebench.config import ROOT
from densebench.data.converters import Sample, get_converter
from densebench.registry import load_yaml, records

PAPER_DATASETS = sorted(
    name
    for name, card in records(load_yaml(ROOT / "config/datasets.yaml")).items()
    if "split_list" in card
)
"""The paper's datasets: the cards that carry the authors' split list."""


def layout(dataset: str) -> ModuleType:
    """The raw-layout module of a dataset."""
    return importlib.import_module(f"{__name__}.{dataset}")


def layout_names() -> set[str]:
    """Datasets that have a raw-layout module here."""
    return {info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)])}


def convert(raw: Path, card: dict) -> list[Sample]:
    """Run the card's converter on a raw tree to completion."""
    return list(get_converter(card["converter"])(raw, card))


def tinted_noise(height: int, width: int, seed: int, tint: tuple[int, int, int]) -> np.ndarray:
    """A deterministic RGB image: uniform noise of +-40 around a stain-like colour."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 40, (height, width, 3))
    return np.clip(np.array(tint, np.int16) + noise, 0, 255).astype(np.uint8)


def box_label(height: int, width: int, box: tuple[int, int, int, int], style: str) -> np.ndarray:
    """A label with one filled box (y0, y1, x0, x1): grey "0-1", grey "0-255" or "rgb" (0/255)."""
    y0, y1, x0, x1 = box
    label = np.zeros((height, width), np.uint8)
    label[y0:y1, x0:x1] = 1 if style == "0-1" else 255
    return np.repeat(label[..., None], 3, axis=2) if style == "rgb" else label
