"""Inference modes: resize, native-resolution scoring, sliding windows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from densebench.evaluate.predict import Windows, batched_logits, predict_matrices, window_starts
from densebench.runtime import amp_dtype
from tests.paper_lists import (
    PIXEL_SPEC,
    TEST_ORDER,
    expected_confusion,
    red_model,
    write_tnbc_store,
)


def sliding_window_logits(forward, image: torch.Tensor, size: int, overlap: float, batch: int):
    """Logits (C, H, W) of a normalised (3, H, W) image from averaged S x S windows, as
    prediction computes them (its Windows plan through batched_logits)."""
    plan = Windows(image, size, overlap)
    for _ in batched_logits(forward, [(plan, None)], batch):
        pass
    return plan.logits()


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


SIDES = [(80, 80), (50, 90), (64, 64), (100, 70), (30, 40), (120, 100), (64, 64)]


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory, registries):
    """A 4-class store whose 7 test images have different sizes (ignore pixels included)."""
    from densebench.data.converters import Sample
    from densebench.data.store import write_store

    rng = np.random.default_rng(5)
    samples = []
    for i, (h, w) in enumerate(SIDES):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = rng.integers(0, 4, (h, w), dtype=np.uint8)
        mask[: h // 8] = 255
        samples.append(Sample(f"s{i}", image, mask, f"{i}.png", f"g{i}", "test"))
    card = {"classes": registries.datasets["demo_nuclei"]["classes"], "converter": None}
    path = tmp_path_factory.mktemp("mixed") / "mixed.zarr"
    write_store(iter(samples), card, "demo_nuclei", path, split_policy="official", seed=0,
                fractions=(0.5, 0.25, 0.25))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def varied_model(demo_config, registries):
    """A demo ViT (random weights, eval mode) whose decoder's weights are redrawn so that its
    predictions vary over the image (a fresh decoder predicts one class everywhere)."""
    from densebench.models.segmenter import build_model
    from densebench.spec import build_run_spec

    spec = build_run_spec(demo_config, "demo_nuclei", "demo_vit_p16", "frozen", registries)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("decoder") and p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / p[0].numel()) ** 0.5)
    return spec, model


def with_settings(spec, inference: str, native: bool, batch: int, workers: int = 0):
    """The spec with another inference mode, batch size and loader worker count."""
    execution = replace(spec.train.execution, num_workers=workers)
    return replace(
        spec,
        evaluate=replace(spec.evaluate, inference=inference, overlap=0.5),
        fixes=dict(spec.fixes, native_resolution_scoring=native),
        train=replace(spec.train, batch_size=batch, execution=execution),
    )


@pytest.mark.parametrize(
    ("inference", "native"), [("resize", False), ("resize", True), ("sliding_window", False)]
)
def test_batched_prediction_equals_one_image_at_a_time(
    varied_model, mixed_store, inference, native
):
    spec, model = varied_model
    cpu = torch.device("cpu")
    single, ids = predict_matrices(
        model, with_settings(spec, inference, native, 1), mixed_store, cpu
    )
    batched, same_ids = predict_matrices(
        model, with_settings(spec, inference, native, 4, workers=2), mixed_store, cpu, threads=3
    )
    assert np.array_equal(single, batched) and ids == same_ids == [f"s{i}" for i in range(7)]
    predicted = single.sum(axis=(0, 1))
    assert (predicted > 0).sum() >= 2  # the model predicts several classes: a real comparison
    if native or inference == "sliding_window":  # scored at native size, ignore rows left out
        assert single.sum(axis=(1, 2)).tolist() == [(h - h // 8) * w for h, w in SIDES]


def test_windows_of_several_images_share_batches():
    from densebench.evaluate.predict import Windows, batched_logits

    sizes = []

    def model(x):
        sizes.append(x.shape[0])
        return pixelwise(x)

    images = [torch.randn(3, h, w, generator=torch.Generator().manual_seed(h)) for h, w in SIDES]
    plans = [(Windows(image, 40, 0.2), k) for k, image in enumerate(images)]
    done = list(batched_logits(model, plans, batch=5))
    assert [k for _, k in done] == list(range(len(images)))  # in order
    windows = sum(plan.n_inputs for plan, _ in plans)
    assert sum(sizes) == windows and sizes[:-1] == [5] * (len(sizes) - 1)  # full batches
    for (plan, _), image in zip(done, images, strict=True):
        alone = sliding_window_logits(pixelwise, image, size=40, overlap=0.2, batch=1)
        assert torch.equal(plan.logits(), alone)


def test_confusion_counts_uint8_masks_like_int64_ones():
    from densebench.evaluate.predict import confusion_matrices

    target = torch.tensor([[[19, 18, 255, 0]]], dtype=torch.uint8)  # 19 x 20 overflows uint8
    pred = torch.tensor([[[19, 0, 3, 0]]])
    matrices = confusion_matrices(pred, target, 20, 255)
    assert matrices[0, 19, 19] == matrices[0, 18, 0] == matrices[0, 0, 0] == 1
    assert int(matrices.sum()) == 3
    assert torch.equal(matrices, confusion_matrices(pred, target.long(), 20, 255))
