"""Inference modes: resize, native-resolution scoring, sliding windows."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from densebench.evaluate.predict import predict_matrices, sliding_window_logits, window_starts
from densebench.train.runtime import amp_dtype
from tests.paper_lists import (
    PIXEL_SPEC,
    TEST_ORDER,
    expected_confusion,
    red_model,
    write_tnbc_store,
)


@pytest.mark.parametrize(
    ("length", "window", "stride", "expected"),
    [(100, 40, 32, [0, 32, 60]), (64, 64, 51, [0]), (30, 64, 51, [0]), (96, 32, 32, [0, 32, 64])],
)
def test_window_starts_snap_the_last_window(length, window, stride, expected):
    assert window_starts(length, window, stride) == expected


def pixelwise(x: torch.Tensor) -> torch.Tensor:
    """A 'model' whose logits depend only on each pixel: windows must reproduce it exactly."""
    return torch.stack([x[:, 0] * 2.0, x[:, 1] - x[:, 2]], dim=1)


@pytest.mark.parametrize(("h", "w"), [(70, 90), (40, 40), (20, 50)])
def test_sliding_windows_average_to_the_pixelwise_output(h, w):
    image = torch.randn(3, h, w, generator=torch.Generator().manual_seed(h * w))
    logits = sliding_window_logits(pixelwise, image, size=40, overlap=0.2, batch=3)
    assert logits.shape == (2, h, w)
    assert torch.allclose(logits, pixelwise(image[None])[0], atol=1e-6)


def test_windows_go_through_the_model_in_chunks():
    sizes = []

    def model(x):
        sizes.append(x.shape[0])
        return pixelwise(x)

    sliding_window_logits(model, torch.zeros(3, 100, 100), size=40, overlap=0.2, batch=4)
    assert max(sizes) <= 4 and sum(sizes) == 9


def test_no_autocast_on_cpu():
    assert amp_dtype(torch.device("cpu"), bf16_fix=True) is None


@pytest.fixture(scope="module")
def run(tmp_path_factory, demo_config, registries, small_store):
    """A 1-epoch frozen run and its model."""
    from densebench.evaluate.predict import load_run
    from densebench.spec import build_run_spec
    from densebench.train.loop import train_run

    config = dict(demo_config, train=dict(demo_config["train"], epochs=1))
    spec = build_run_spec(config, "demo_nuclei", "demo_vit_p16", "frozen", registries)
    out = tmp_path_factory.mktemp("run")
    train_run(spec, small_store, out)
    return load_run(out / "best.pt", None)


@pytest.mark.parametrize(
    ("inference", "native"), [("resize", False), ("resize", True), ("sliding_window", False)]
)
def test_prediction_modes_score_at_the_right_resolution(run, small_store, inference, native):
    from densebench.data.store import DatasetStore

    spec, model = run
    evaluate = replace(spec.evaluate, inference=inference, overlap=0.5)
    fixes = dict(spec.fixes, native_resolution_scoring=native)
    spec = replace(spec, evaluate=evaluate, fixes=fixes)
    matrices, ids = predict_matrices(model.eval(), spec, small_store, torch.device("cpu"))
    store = DatasetStore(small_store)
    pixels = [s["height"] * s["width"] for s in store.samples if s["split"] == "test"]
    size = spec.input_size
    expected = [size * size] * len(pixels) if inference == "resize" and not native else pixels
    assert matrices.sum(axis=(1, 2)).tolist() == expected
    assert len(ids) == len(pixels)


def test_paper_store_matrices_come_in_list_order(tmp_path):
    """The test split's confusion matrices follow the authors' test list, image by image."""
    from densebench.data.store import DatasetStore

    store = write_tnbc_store(tmp_path / "paper.zarr")
    matrices, ids = predict_matrices(red_model, PIXEL_SPEC, store, torch.device("cpu"))
    assert tuple(ids) == TEST_ORDER
    reader = DatasetStore(store)
    where = {m["id"]: i for i, m in enumerate(reader.samples)}
    expected = [expected_confusion(*reader.read(where[i])) for i in TEST_ORDER]
    assert matrices.tolist() == [m.tolist() for m in expected]
    assert len({m.tobytes() for m in matrices}) == len(TEST_ORDER)  # all distinct
