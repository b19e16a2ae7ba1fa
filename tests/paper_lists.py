"""Shared data of the paper-split order tests: an excerpt of the authors' TNBC split list.

`tests/fixtures/tnbc_split_excerpt.json` keeps, from lingxitong/PFM_Segmentation
configs/data/TNBC.json (commit ae0ac9df7f73d7cbe6d44d2d159f79d32a6ee95c), the first 4 train and
first 2 val entries and all 5 test entries, each in the list's own (shuffled) order.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from densebench.config import load_config, registry_path
from densebench.data.converters import Sample
from densebench.data.store import write_store
from densebench.geometry import Normalisation
from densebench.registry import AXES, Registries
from densebench.spec import RunSpec, build_run_spec
from tests.conftest import FIXTURES, REPO

EXCERPT = FIXTURES / "tnbc_split_excerpt.json"
TEST_ORDER = ("02_2", "06_2", "01_6", "09_4", "06_1")
"""The test entries in the authors' list order (store order is sorted: 01_6, 02_2, 06_1, ...)."""
CARD = {"classes": ["background", "nucleus"], "display_name": "TNBC excerpt"}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def listing() -> dict:
    """The published-list excerpt."""
    return json.loads(EXCERPT.read_text())


def list_stems(split: str) -> list[str]:
    """File stems of one split of the excerpt, in list order."""
    return [Path(e["image_path"]).stem for e in listing()["data"][split]]


def samples() -> list[Sample]:
    """TNBC-like samples in sorted (converter) order, of different sizes, plus one unlisted."""
    ids = sorted(stem for split in ("train", "val", "test") for stem in list_stems(split))
    rng = np.random.default_rng(8)
    out = []
    for i, sample_id in enumerate([*ids, "unlisted_0"]):
        h, w = 18 + 3 * i, 30 - i
        mask = (rng.random((h, w)) < 0.15 + 0.06 * i).astype(np.uint8)
        mask[rng.random((h, w)) < 0.05] = 255
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image[..., 0] = np.where(mask == 1, rng.integers(90, 256, (h, w)), image[..., 0])
        out.append(
            Sample(
                sample_id=sample_id,
                image=image,
                mask=mask,
                source_file=f"images/{sample_id}.png",
                group_id=sample_id.split("_")[0],
                official_split=None,
            )
        )
    return out


def write_tnbc_store(out: Path, policy: str = "paper") -> Path:
    """Write the samples as a store under `policy` (the excerpt list for "paper")."""
    write_store(
        samples(),
        CARD,
        "TNBC",
        out,
        split_policy=policy,
        seed=0,
        fractions=(0.5, 0.2, 0.3),
        split_list=listing() if policy == "paper" else None,
    )
    return out


def expected_confusion(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Confusion of `red_model` on one native image: class 1 where normalised red > 0."""
    pred = (image[..., 0] >= 124).astype(np.int64)  # (x - 0.485 * 255) / sd > 0 <=> x >= 124
    valid = mask != 255
    counts = np.bincount(mask[valid].astype(np.int64) * 2 + pred[valid], minlength=4)
    return counts.reshape(2, 2)


def red_model(x: torch.Tensor) -> torch.Tensor:
    """Logits (0, red): class 1 where the normalised red channel is positive."""
    return torch.stack([torch.zeros_like(x[:, 0]), x[:, 0]], dim=1)


def pixel_spec() -> RunSpec:
    """A demo run spec with the prediction settings of `red_model` on the excerpt: 2 classes,
    ImageNet statistics, sliding windows of S = 64 (>= every image side: one zero-padded window,
    cropped back), full precision."""
    config = load_config(REPO / "config/demo.yaml")
    registries = Registries.load(*(registry_path(config, axis) for axis in AXES))
    spec = build_run_spec(config, "demo_nuclei", "demo_vit_p16", "frozen", registries)
    return replace(
        spec,
        num_classes=2,
        ignore_index=255,
        input_size=64,
        normalisation=Normalisation(MEAN, STD),
        evaluate=replace(spec.evaluate, inference="sliding_window", overlap=0.2),
        fixes=dict(spec.fixes, bf16_autocast=False, native_resolution_scoring=False),
        train=replace(spec.train, batch_size=2),
    )


PIXEL_SPEC = pixel_spec()
