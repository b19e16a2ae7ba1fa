"""Prediction of a run's test split -> per-image confusion matrices and object tallies.

For a dataset with instance labels, one pass over the test split writes both `confusion.npz`
and `objects.npz`. The predicted class maps (`predict.predicted_class_maps`, at the resolution
the pixel metrics are scored at) give the confusion matrices; turned into objects
(`objects.predicted_instances`: connected components), they are compared with the dataset's
ground-truth instances (`densebench.data.instances.InstanceStore`), resized like the label
(nearest neighbour) where the label is. Pixels labelled `ignore` belong to no object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from densebench.data.resize import MASK_INTERPOLATION
from densebench.evaluate.confusion import write_confusion
from densebench.evaluate.object_tallies import write_object_tallies
from densebench.evaluate.objects import predicted_instances, tally
from densebench.evaluate.predict import (
    confusion_matrices,
    load_run,
    predicted_class_maps,
    scored_test_split,
)
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
def predict_with_objects(
    model, spec: RunSpec, store: Path, instances: Path, kind: str, device, threads: int = 1
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One pass over the test split: per-image confusion matrices (N, C, C), as
    `predict.predict_matrices` gives them, and object tallies (N, F); the sample ids."""
    from densebench.data.instances import InstanceStore

    data = scored_test_split(spec, store)
    truth = InstanceStore(instances)
    if list(truth.sample_ids) != [sample["id"] for sample in data.store.samples]:
        raise ValueError(
            f"{instances}: its samples are not those of {store}; rebuild the instance store "
            "(delete it and rerun the workflow)"
        )
    background = background_class(data.store.classes)
    c, ignore = spec.num_classes, spec.ignore_index
    matrices, rows = [], []
    for k, (pred, label) in enumerate(predicted_class_maps(model, spec, data, device, threads)):
        matrices.append(confusion_matrices(pred[None], label[None], c, ignore))
        label_np = label.cpu().numpy()
        valid = label_np != ignore
        gt = scored_instances(truth.read(data.indices[k]), label_np.shape) * valid
        predicted = np.where(valid, pred.cpu().numpy(), background)
        rows.append(tally(gt, predicted_instances(predicted, kind, background), kind))
    ids = [data.sample_id(k) for k in range(len(data))]
    stacked = torch.cat(matrices).cpu().numpy().astype(np.int64)
    return stacked, np.stack(rows), ids


def predict_objects_run(
    checkpoint: Path,
    store: Path,
    out: Path,
    objects: tuple[Path, str, Path],
    weights_dir: Path | None = None,
    threads: int = 1,
    spec: RunSpec | None = None,
) -> dict[str, Any]:
    """Write confusion.npz (`out`) and objects.npz of the test split from one prediction;
    `objects` is (instance store, kind, objects.npz)."""
    from densebench.data.store import DatasetStore

    instances, kind, objects_out = objects
    spec, model = load_run(checkpoint, weights_dir, spec)
    execution = spec.train.execution
    device = configure_torch(int(spec.train.seed), threads, execution.deterministic_algorithms)
    model.to(device).eval()
    matrices, tallies, ids = predict_with_objects(
        model, spec, store, instances, kind, device, threads
    )
    keys = {k: getattr(spec, k) for k in RUN_KEYS}
    write_confusion(Path(out), matrices, ids, DatasetStore(store).classes, keys)
    write_object_tallies(Path(objects_out), tallies, ids, kind, keys)
    return {"images": len(ids), "pixels": int(matrices.sum())}
