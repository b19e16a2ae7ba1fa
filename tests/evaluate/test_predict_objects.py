"""Object tallies from a run's predictions against the instance store (issue 21 item 2)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from densebench.data.converters import Sample
from densebench.data.instances import write_instances
from densebench.data.store import write_store
from densebench.evaluate.objects import FIELDS
from densebench.evaluate.predict import predict_matrices
from densebench.evaluate.predict_objects import background_class, predict_with_objects
from tests.paper_lists import PIXEL_SPEC, red_model

SQUARES = 3  # glands / nuclei per image, apart from each other


def blob_samples(n: int = 6) -> list[Sample]:
    """Images whose red channel marks each square object (red_model segments them exactly)."""
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        h, w = 40 + 2 * i, 48
        mask = np.zeros((h, w), np.uint8)
        instances = np.zeros((h, w), np.int32)
        for k in range(SQUARES):
            y, x = 4 + 12 * k, 6 + int(rng.integers(0, 30))
            size = 5 + k
            mask[y : y + size, x : x + size] = 1
            instances[y : y + size, x : x + size] = 7 * (k + 1)  # ids need not be consecutive
        image = rng.integers(0, 100, (h, w, 3), dtype=np.uint8)  # red < 124: background
        image[..., 0] = np.where(mask == 1, 200, image[..., 0])
        out.append(Sample(f"blob_{i}", image, mask, f"{i}.png", f"g{i}", None, instances))
    return out


@pytest.fixture(scope="module", params=["gland", "nucleus"])
def stores(request, tmp_path_factory) -> tuple[Path, Path, str]:
    """A semantic store and its instance store of the blob samples."""
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    card = {"classes": ["background", "object"], "display_name": "blobs", "instance_labels": kind}
    store, instances = root / "blobs.zarr", root / "blobs.instances.zarr"
    write_store(blob_samples(), card, "blobs", store, split_policy="seeded", seed=0,
                fractions=(0.5, 0.0, 0.5))  # fmt: skip
    write_instances(blob_samples(), card, "blobs", store, instances)
    return store, instances, kind


def tallies_of(model, spec, stores) -> np.ndarray:
    """The object tallies of one pass, whose confusion matrices must be predict_matrices'."""
    store, instances, kind = stores
    cpu = torch.device("cpu")
    matrices, tallies, ids = predict_with_objects(model, spec, store, instances, kind, cpu)
    alone, same_ids = predict_matrices(model, spec, store, cpu)
    assert np.array_equal(matrices, alone) and ids == same_ids and len(ids) == 3
    return tallies


def test_a_perfect_prediction_tallies_every_object_matched(stores) -> None:
    kind = stores[2]
    tallies = tallies_of(red_model, PIXEL_SPEC, stores)
    fields = dict(zip(FIELDS[kind], tallies.T, strict=True))
    assert tallies.shape == (3, len(FIELDS[kind]))
    assert (fields["tp"] == SQUARES).all() and (fields["fp"] == 0).all()
    assert (fields["fn"] == 0).all()
    if kind == "nucleus":
        assert np.allclose(fields["iou_sum"], SQUARES)  # every match has IoU 1
        assert np.array_equal(fields["aji_intersection"], fields["aji_union"])
    else:
        area = sum((5 + k) ** 2 for k in range(SQUARES))
        assert np.allclose(fields["gt_area_dice"], area) and np.allclose(fields["gt_area"], area)
        assert np.allclose(fields["gt_area_hausdorff"], 0)  # every gland exactly found


def test_a_prediction_of_nothing_misses_every_object(stores) -> None:
    kind = stores[2]

    def nothing(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.ones_like(x[:, 0]), torch.zeros_like(x[:, 0])], dim=1)

    tallies = tallies_of(nothing, PIXEL_SPEC, stores)
    fields = dict(zip(FIELDS[kind], tallies.T, strict=True))
    assert (fields["tp"] == 0).all() and (fields["fn"] == SQUARES).all()


def test_resize_scoring_compares_at_the_scored_resolution(stores) -> None:
    kind = stores[2]
    spec = replace(
        PIXEL_SPEC, input_size=32, evaluate=replace(PIXEL_SPEC.evaluate, inference="resize")
    )
    tallies = tallies_of(red_model, spec, stores)
    fields = dict(zip(FIELDS[kind], tallies.T, strict=True))
    assert (fields["tp"] == SQUARES).all()  # the objects survive the nearest resize to 32 px


def test_the_background_is_the_class_named_so() -> None:
    assert background_class(["background", "a"]) == 0
    assert background_class(["neoplastic", "inflammatory", "background"]) == 2  # PanNuke's order
    assert background_class(["tumour", "stroma"]) == 0
