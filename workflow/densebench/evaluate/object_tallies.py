"""A run's per-image object tallies (`objects.npz`) and their bootstrap: the file's one home.

For datasets whose card has instance labels (`instance_labels: nucleus | gland`), prediction
also counts, per test image, the additive tallies of `densebench.evaluate.objects` (matched
nuclei, AJI intersections and unions; GlaS object counts and weighted Dice / Hausdorff sums)
between the ground-truth instances and the predicted objects. The file holds:

- `tallies`: (N, F) float64, one row per test image, in split order (the confusion file's);
- `fields`: (F,) the tally names (`objects.FIELDS[kind]`);
- `kind`: `nucleus` or `gland`;
- `sample_ids`: (N,) the stored id of each image;
- `run_keys`: the run's (dataset, model, strategy), in `RUN_KEYS` order.

Scoring (`score_objects`) sums the tallies of the bootstrap's image draws, the same draws as the
pixel metrics (`bootstrap.bootstrap_indices` with the same N, replicates and seed), so the
object metrics get their 95% CIs from the same resampled test sets. numpy only (report env).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densebench.atomic import atomic_output
from densebench.evaluate.bootstrap import SCORE_COLUMNS, scoring_columns, summarise
from densebench.evaluate.objects import FIELDS, METRICS, object_metrics, replicate_object_metrics
from densebench.variants import RUN_KEYS

if TYPE_CHECKING:
    import pandas as pd

OBJECT_FILE = "objects.npz"
"""The tallies' file name in a run folder, beside `confusion.npz`."""
TALLY_VERSION = 1
"""Version of the tallies' definitions (in the tallies' identity: a change re-predicts them)."""
ARRAYS = ("tallies", "fields", "kind", "sample_ids")


def write_object_tallies(
    path: Path,
    tallies: np.ndarray,
    sample_ids: Sequence[str],
    kind: str,
    keys: Mapping[str, str],
) -> None:
    """Write a run's object tallies atomically; `keys` holds the `RUN_KEYS` of the run."""
    tallies = np.asarray(tallies, dtype=np.float64).reshape(len(sample_ids), len(FIELDS[kind]))
    with atomic_output(Path(path)) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            tallies=tallies,
            fields=np.array(FIELDS[kind]),
            kind=np.array(kind),
            sample_ids=np.array(sample_ids),
            run_keys=np.array([keys[k] for k in RUN_KEYS]),
        )


def load_object_tallies(path: Path) -> tuple[np.ndarray, str, np.ndarray]:
    """(tallies, kind, sample_ids) of an object tallies file, checked against its kind's fields."""
    with np.load(path, allow_pickle=False) as data:
        missing = set(ARRAYS) - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)}; re-predict the run")
        tallies, fields, kind, ids = (data[name] for name in ARRAYS)
    kind = str(kind)
    if kind not in FIELDS or tuple(str(f) for f in fields) != FIELDS[kind]:
        raise ValueError(
            f"{path}: tallies {list(fields)} of kind {kind!r} are not this version's "
            f"{FIELDS.get(kind)}; delete the file and re-predict the run"
        )
    if tallies.shape != (len(ids), len(fields)):
        raise ValueError(f"{path}: tallies shape {tallies.shape} for {len(ids)} images")
    return tallies, kind, ids


def check_same_images(objects: Path, confusion: Path) -> None:
    """The tallies must list the confusion file's images in its order (the bootstrap's indices
    pick image i of both), else the metrics would resample different test sets."""
    from densebench.evaluate.confusion import load_confusion

    _, _, object_ids = load_object_tallies(objects)
    _, confusion_ids, _ = load_confusion(confusion)
    if list(object_ids) != list(confusion_ids):
        raise ValueError(
            f"{objects}: its test images differ from those of {confusion}; delete {objects} "
            "and re-predict the run"
        )


def score_objects(
    path: Path,
    keys: Mapping[str, str],
    replicates: int,
    seed: int,
    *,
    definitions: str = "paper",
    exclude_background: bool = False,
) -> pd.DataFrame:
    """Bootstrap one run's object tallies into tidy rows (``SCORE_COLUMNS`` after the keys):
    one row per metric of the file's kind, class and class_name NA, beside the pixel metrics."""
    import pandas as pd

    tallies, kind, _ = load_object_tallies(Path(path))
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    if tallies.shape[0] == 0:
        raise ValueError(f"{path}: cannot bootstrap an empty set of images")
    point = object_metrics(tallies.sum(axis=0), kind)
    boot = replicate_object_metrics(tallies, kind, replicates, seed)
    common = {
        "class": pd.NA,
        "class_name": pd.NA,
        **scoring_columns(tallies.shape[0], replicates, seed, definitions, exclude_background),
    }
    rows = [
        {
            **dict(keys),
            "metric": name,
            **common,
            **summarise(np.asarray(boot[name], dtype=np.float64), float(point[name])),
        }
        for name in METRICS[kind]
    ]
    return pd.DataFrame(rows, columns=[*keys, *SCORE_COLUMNS]).astype({"class": "Int64"})
