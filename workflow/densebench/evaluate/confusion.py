"""Per-image confusion matrices and the run's confusion file (`confusion.npz`): their one home.

A matrix counts pixels with rows = ground truth and columns = prediction; pixels labelled
`ignore` are dropped. Training's validation and prediction count them from class maps
(`densebench.evaluate.predict.confusion_matrices`, torch), prediction writes the file
(`write_confusion`), scoring reads it (`load_confusion`, `run_keys`) with numpy alone, so the
report environment (envs/report.yaml) needs no torch. The file holds four arrays:

- `matrices`: (N, C, C) int64, one matrix per test image, in split order;
- `sample_ids`: (N,) the stored id of each image;
- `classes`: (C,) the class names of the dataset store;
- `run_keys`: the run's (dataset, model, strategy), in `RUN_KEYS` order (densebench.variants).

Every downstream number is a pure function of this file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from densebench.atomic import atomic_output
from densebench.variants import RUN_KEYS

ARRAYS = ("matrices", "sample_ids", "classes")
"""Arrays every confusion file must hold for scoring."""


def write_confusion(
    path: Path,
    matrices: np.ndarray,
    sample_ids: Sequence[str],
    classes: Sequence[str],
    keys: Mapping[str, str],
) -> None:
    """Write a run's confusion file atomically; `keys` holds the `RUN_KEYS` of the run."""
    with atomic_output(Path(path)) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            matrices=matrices,
            sample_ids=np.array(sample_ids),
            classes=np.array(classes),
            run_keys=np.array([keys[k] for k in RUN_KEYS]),
        )


def load_confusion(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load (matrices, sample_ids, classes) from a confusion file and check their shapes."""
    with np.load(path, allow_pickle=False) as data:
        missing = set(ARRAYS) - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)}")
        matrices, sample_ids, classes = (data[name] for name in ARRAYS)
    n_classes = len(classes)
    if matrices.ndim != 3 or matrices.shape[1:] != (n_classes, n_classes):
        raise ValueError(
            f"{path}: matrices shape {matrices.shape} does not match {n_classes} classes"
        )
    if len(sample_ids) != matrices.shape[0]:
        raise ValueError(f"{path}: {len(sample_ids)} sample_ids for {matrices.shape[0]} matrices")
    return matrices, sample_ids, classes


def run_keys(path: Path) -> dict[str, str]:
    """The (dataset, model, strategy) a confusion file belongs to, read from the file."""
    with np.load(path) as data:
        return dict(zip(RUN_KEYS, (str(v) for v in data["run_keys"]), strict=True))
