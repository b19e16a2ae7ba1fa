"""Prediction of a run's test split -> per-image object tallies (`objects.npz`).

The same predicted class maps as the confusion matrices (`predict.predicted_class_maps`, at the
resolution the pixel metrics are scored at), turned into objects (`objects.predicted_instances`:
connected components) and compared with the dataset's ground-truth instances
(`densebench.data.instances.InstanceStore`), resized like the label (nearest neighbour) where
the label is. Pixels labelled `ignore` belong to no object on either side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from densebench.data.resize import MASK_INTERPOLATION
from densebench.evaluate.object_tallies import write_object_tallies
from densebench.evaluate.objects import predicted_instances, tally
from densebench.evaluate.predict import load_run, predicted_class_maps, scored_test_split
from densebench.runtime import configure_torch
from densebench.spec import RunSpec
from densebench.variants import RUN_KEYS


def scored_instances(instances: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Ground-truth instances at the scored resolution: nearest neighbour, as the label."""
    import cv2

    if instances.shape == tuple(shape):
        return instances
    height, width = shape
    return cv2.resize(instances.astype(np.int32), (width, height), interpolation=MASK_INTERPOLATION)


def background_class(classes: list[str]) -> int:
    """The class no object is made of: the one named `background` (PanNuke's is its last),
    else class 0."""
    return classes.index("background") if "background" in classes else 0


@torch.no_grad()
def predict_object_tallies(
    model, spec: RunSpec, store: Path, instances: Path, kind: str, device, threads: int = 1
) -> tuple[np.ndarray, list[str]]:
    """Per-image object tallies (N, F) of the test split and the sample ids, in split order."""
    from densebench.data.instances import InstanceStore

    data = scored_test_split(spec, store)
    truth = InstanceStore(instances)
    ids = [data.sample_id(k) for k in range(len(data))]
    if list(truth.sample_ids) != [sample["id"] for sample in data.store.samples]:
        raise ValueError(
            f"{instances}: its samples are not those of {store}; rebuild the instance store "
            "(delete it and rerun the workflow)"
        )
    background = background_class(data.store.classes)
    rows = []
    for k, (pred, label) in enumerate(predicted_class_maps(model, spec, data, device, threads)):
        label_np = label.cpu().numpy()
        valid = label_np != spec.ignore_index
        gt = scored_instances(truth.read(data.indices[k]), label_np.shape) * valid
        predicted = np.where(valid, pred.cpu().numpy(), background)
        rows.append(tally(gt, predicted_instances(predicted, kind, background), kind))
    return np.stack(rows), ids


def predict_objects_run(
    checkpoint: Path,
    store: Path,
    instances: Path,
    kind: str,
    out: Path,
    weights_dir: Path | None = None,
    threads: int = 1,
    spec: RunSpec | None = None,
) -> dict[str, Any]:
    """Write objects.npz for the test split: tallies (N, F), fields, kind, sample_ids, keys."""
    spec, model = load_run(checkpoint, weights_dir, spec)
    execution = spec.train.execution
    device = configure_torch(int(spec.train.seed), threads, execution.deterministic_algorithms)
    model.to(device).eval()
    tallies, ids = predict_object_tallies(model, spec, store, instances, kind, device, threads)
    keys = {k: getattr(spec, k) for k in RUN_KEYS}
    write_object_tallies(Path(out), tallies, ids, kind, keys)
    return {"images": len(ids)}
