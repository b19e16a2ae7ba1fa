"""A run's object tallies file and its bootstrap beside the pixel metrics (issue 21 item 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from densebench.evaluate.bootstrap import bootstrap_indices, score_run
from densebench.evaluate.confusion import write_confusion
from densebench.evaluate.object_tallies import (
    check_same_images,
    load_object_tallies,
    score_objects,
    write_object_tallies,
)
from densebench.evaluate.objects import FIELDS, METRICS, object_metrics, predicted_instances, tally

KEYS = {"dataset": "demo_nuclei", "model": "demo_vit_p8", "strategy": "lora"}


def blobs(seed: int, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A ground-truth instance map of a few squares and a predicted class map that shifts them."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((size, size), np.int32)
    pred = np.zeros((size, size), np.int64)
    for k in range(1, 5):
        y, x = rng.integers(0, size - 6, 2)
        gt[y : y + 5, x : x + 5] = k
        dy, dx = rng.integers(-1, 2, 2)
        pred[max(y + dy, 0) : y + dy + 5, max(x + dx, 0) : x + dx + 5] = 1 + k % 2
    return gt, pred


def run_files(tmp_path: Path, n: int = 7, kind: str = "nucleus") -> tuple[Path, Path, np.ndarray]:
    """objects.npz and confusion.npz of a run of n images, in one run folder."""
    rows, ids = [], [f"s{i}" for i in range(n)]
    for i in range(n):
        gt, pred = blobs(i)
        rows.append(tally(gt, predicted_instances(pred, kind), kind))
    tallies = np.stack(rows)
    objects, confusion = tmp_path / "objects.npz", tmp_path / "confusion.npz"
    write_object_tallies(objects, tallies, ids, kind, KEYS)
    matrices = np.random.default_rng(0).integers(0, 50, (n, 3, 3))
    write_confusion(confusion, matrices, ids, ["background", "a", "b"], KEYS)
    return objects, confusion, tallies


@pytest.mark.parametrize("kind", ["nucleus", "gland"])
def test_tallies_round_trip(tmp_path: Path, kind: str) -> None:
    objects, _, tallies = run_files(tmp_path, kind=kind)
    loaded, loaded_kind, ids = load_object_tallies(objects)
    assert loaded_kind == kind and list(ids) == [f"s{i}" for i in range(7)]
    assert np.array_equal(loaded, tallies) and loaded.shape[1] == len(FIELDS[kind])


def test_object_cis_resample_the_pixel_metrics_image_draws(tmp_path: Path) -> None:
    objects, confusion, tallies = run_files(tmp_path)
    scored = score_objects(objects, KEYS, replicates=50, seed=3)
    rows = scored.set_index("metric")
    assert list(rows.index) == list(METRICS["nucleus"])
    draws = bootstrap_indices(len(tallies), 50, 3)  # the draws score_run uses for the pixels
    by_hand = np.array([object_metrics(tallies[d].sum(axis=0), "nucleus")["PQ"] for d in draws])
    assert rows.loc["PQ", "boot_mean"] == pytest.approx(np.nanmean(by_hand))
    assert rows.loc["PQ", "ci_lower"] == pytest.approx(np.nanpercentile(by_hand, 2.5))
    assert rows.loc["PQ", "point"] == pytest.approx(
        object_metrics(tallies.sum(axis=0), "nucleus")["PQ"]
    )
    pixels = score_run(confusion, KEYS, replicates=50, seed=3)
    assert list(pixels.columns) == list(scored.columns)  # one tidy schema
    assert set(rows["n_images"]) == {7} and rows["class"].isna().all()


def test_tallies_of_other_images_than_the_confusion_are_refused(tmp_path: Path) -> None:
    objects, confusion, tallies = run_files(tmp_path)
    check_same_images(objects, confusion)
    write_object_tallies(
        objects, tallies[::-1], [f"s{i}" for i in reversed(range(7))], "nucleus", KEYS
    )
    with pytest.raises(ValueError, match="re-predict the run"):
        check_same_images(objects, confusion)


def test_a_file_of_other_fields_names_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    fields, ids = np.array(["tp", "fp"]), np.array(["a", "b"])
    kind = np.array("nucleus")
    np.savez(path, tallies=np.zeros((2, 2)), fields=fields, kind=kind, sample_ids=ids)
    with pytest.raises(ValueError, match="delete the file and re-predict"):
        load_object_tallies(path)
