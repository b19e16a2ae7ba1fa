"""Prediction of a run's test split -> per-image confusion matrices on disk.

Resize mode (the paper's published setting, protocol.md §4): image resized to S x S, one
forward pass, argmax; the label is resized to S x S (nearest) and scored at that resolution.
Every downstream number is a pure function of the saved matrices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from densebench.atomic import atomic_output
from densebench.data import SegmentationSplit
from densebench.models.segmenter import backbone_fingerprint, build_model, load_trainable_state
from densebench.train import configure_torch, confusion, loader

RUN_KEYS = ("dataset", "model", "strategy")
"""Keys identifying a run, stored in its confusion file."""


def load_run(checkpoint: Path, weights_dir: Path | None):
    """Rebuild a trained run's model from its spec and trainable-state checkpoint."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    spec = saved["spec"]
    model = build_model(spec, weights_dir)
    expected = saved["provenance"]["backbone_fingerprint"]
    if not np.isclose(backbone_fingerprint(model), expected, rtol=1e-9):
        raise ValueError(
            f"{checkpoint}: the rebuilt backbone of {spec['model']} differs from the one it was "
            "trained with (other weights or seed); retrain the run"
        )
    load_trainable_state(model, saved["state"])
    return spec, model


@torch.no_grad()
def predict_run(
    checkpoint: Path, store: Path, out: Path, weights_dir: Path | None = None, threads: int = 1
) -> dict[str, Any]:
    """Write confusion.npz for the test split: matrices (N, C, C), sample_ids, classes."""
    spec, model = load_run(checkpoint, weights_dir)
    device = configure_torch(int(spec["train"]["seed"]), threads)
    model.to(device).eval()
    norm = spec["normalisation"]
    data = SegmentationSplit(store, "test", spec["input_size"], norm["mean"], norm["std"])
    batch = int(spec["train"]["batch_size"])
    matrices = []
    for x, y in loader(data, batch, list(range(len(data))), 0):
        pred = model(x.to(device)).argmax(1).cpu()
        matrices.append(confusion(pred, y, spec["num_classes"], spec["ignore_index"]))
    stacked = torch.cat(matrices).numpy().astype(np.int64)
    ids = np.array([data.sample_id(k) for k in range(len(data))])
    classes = np.array(data.store.classes)
    with atomic_output(Path(out)) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            matrices=stacked,
            sample_ids=ids,
            classes=classes,
            run_keys=np.array([spec[k] for k in RUN_KEYS]),
        )
    return {"images": len(ids), "pixels": int(stacked.sum())}


def run_keys(confusion_path: Path) -> dict[str, str]:
    """The (dataset, model, strategy) a confusion file belongs to, read from the file."""
    with np.load(confusion_path) as data:
        return dict(zip(RUN_KEYS, (str(v) for v in data["run_keys"]), strict=True))
