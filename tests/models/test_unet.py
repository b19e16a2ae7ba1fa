"""The authors' UNet baseline (densebench.models.unet): size, shapes, strategies, checkpoints.

Parameter counts are checked against the layer formula, not against the module; shapes at every
input side the paper grid gives the `unet` record (derived from the registries by the paper's
rule) on the meta device, and at odd sides for real on a narrow UNet.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import densebench.models.weights
import densebench.train.loop
from densebench.cli import main
from densebench.config import ROOT, load_config
from densebench.evaluate.predict import load_run, patch_tokens
from densebench.geometry import input_size
from densebench.models.segmenter import (
    build_model,
    build_on_meta,
    count_parameters,
    load_trainable_state,
    trainable_state,
)
from densebench.models.unet import UNet
from densebench.spec import build_run_spec


def double_conv(cin: int, cout: int, mid: int | None = None) -> int:
    """Parameters of two bias-free 3x3 convs (cin -> mid -> cout), each with a BatchNorm."""
    mid = mid or cout
    return 9 * cin * mid + 2 * mid + 9 * mid * cout + 2 * cout


def unet_formula(classes: int, c: int = 64) -> int:
    """The bilinear UNet's parameters layer by layer: encoder, decoder, 1x1 classifier."""
    encoder = (
        double_conv(3, c)
        + double_conv(c, 2 * c)
        + double_conv(2 * c, 4 * c)
        + double_conv(4 * c, 8 * c)
        + double_conv(8 * c, 8 * c)  # bottleneck 16c // 2
    )
    decoder = (
        double_conv(16 * c, 4 * c, 8 * c)
        + double_conv(8 * c, 2 * c, 4 * c)
        + double_conv(4 * c, c, 2 * c)
        + double_conv(2 * c, c, c)
    )
    return encoder + decoder + c * classes + classes


def paper_spec(registries, model: str = "unet", strategy: str = "full", dataset: str = "GlaS"):
    """A run spec of the paper config."""
    return build_run_spec(
        load_config(ROOT / "config/config.yaml"), dataset, model, strategy, registries
    )


@pytest.mark.parametrize("classes", [2, 22])
def test_parameter_count_is_the_layer_formula(registries, classes):
    spec = dataclasses.replace(paper_spec(registries), num_classes=classes)
    counts = count_parameters(build_on_meta(spec))
    assert counts["trainable"] == counts["total"] == unet_formula(classes)
    assert round(unet_formula(2) / 1e6, 1) == registries.models["unet"]["params_m"]


def test_demo_unet_is_the_narrow_unet(registries):
    record = registries.models["demo_unet"]
    assert record["kwargs"]["base_channels"] == 8
    assert round(unet_formula(2, 8) / 1e6, 2) == record["params_m"]
    assert record["embed_dim"] == 16 * 8 // 2  # the bottleneck width


def unet_grid_sizes(registries) -> list[int]:
    """Input sides of the `unet` record over every dataset card, at the paper's size cap."""
    cap = load_config(ROOT / "config/config.yaml")["train"]["max_input_size"]
    record = registries.models["unet"]
    return sorted({input_size(card, record, cap) for card in registries.datasets.values()})


def test_grid_sizes_give_logits_of_the_input_size(registries):
    sizes = unet_grid_sizes(registries)
    assert {192, 256, 416, 944, 992} <= set(sizes)  # e.g. the authors' 944 for BCSS
    with torch.device("meta"):
        net = UNet(num_classes=22)
        for size in sizes:
            assert net(torch.empty(2, 3, size, size)).shape == (2, 22, size, size), size


@pytest.mark.parametrize("size", [200, 257, 100])
def test_sides_not_divisible_by_16_are_padded_inside(size):
    torch.manual_seed(0)
    net = UNet(num_classes=3, base_channels=4).eval()
    with torch.no_grad():
        logits = net(torch.randn(1, 3, size, size))
    assert logits.shape == (1, 3, size, size) and torch.isfinite(logits).all()


def test_one_channel_input_is_repeated_to_three():
    torch.manual_seed(0)
    net = UNet(num_classes=2, base_channels=4).eval()
    gray = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(net(gray), net(gray.repeat(1, 3, 1, 1)))


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    net = UNet(num_classes=2, base_channels=4).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        plain = net(x)
        net.use_channels_last()
        assert torch.allclose(net(x), plain, atol=1e-5)


def test_every_strategy_but_full_is_refused(registries):
    others = [name for name in registries.strategies if name != "full"]
    assert {"frozen", "lora", "dora", "cnn_adapter", "transformer_adapter"} <= set(others)
    for strategy in others:
        spec = paper_spec(registries, strategy=strategy)
        pattern = rf"model unet .*strategy {strategy} .*use strategy full"
        with pytest.raises(ValueError, match=pattern):
            build_on_meta(spec)
    with pytest.raises(ValueError, match="use strategy full"):
        build_model(paper_spec(registries, "demo_unet", "lora"))


def test_record_must_fit_the_built_unet(registries):
    spec = paper_spec(registries, "demo_unet")
    bad_dim = dict(spec.model_record, embed_dim=48)
    with pytest.raises(ValueError, match=r"embed_dim=48.*bottleneck has 64"):
        build_model(dataclasses.replace(spec, model_record=bad_dim))
    bad_kwargs = dict(spec.model_record, kwargs={"depth": 3})
    with pytest.raises(ValueError, match="unknown UNet kwargs"):
        build_model(dataclasses.replace(spec, model_record=bad_kwargs))


def test_init_is_seeded_by_the_run_seed(registries):
    spec = paper_spec(registries, "demo_unet")
    a, b = build_model(spec).state_dict(), build_model(spec).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = dataclasses.replace(spec, train=dataclasses.replace(spec.train, seed=7))
    assert not torch.equal(
        a["inc.double_conv.0.weight"], build_model(other).state_dict()["inc.double_conv.0.weight"]
    )


def test_checkpoint_holds_every_parameter_and_batchnorm_buffer(registries):
    spec = paper_spec(registries, "demo_unet")
    net = build_model(spec)
    net.train()(torch.randn(2, 3, 32, 32))  # move the BatchNorm running statistics
    state = trainable_state(net)
    assert set(state) == set(net.state_dict())
    assert any(k.endswith("running_var") for k in state)
    assert any(k.endswith("num_batches_tracked") for k in state)
    fresh = UNet(spec.num_classes, base_channels=8)
    fresh.load_state_dict(state, strict=True)
    load_trainable_state(build_model(spec), state)


def test_token_functions_refuse_the_unet():
    with pytest.raises(ValueError, match="UNet has no patch tokens"):
        patch_tokens(UNet(num_classes=2, base_channels=4), torch.zeros(1, 3, 32, 32))


def test_train_then_predict_reloads_the_trained_unet(
    demo_config, registries, small_store, tmp_path, monkeypatch
):
    """`densebench train` (one epoch) then `densebench predict`: the reloaded model's logits
    are the trained model's."""
    config = dict(
        demo_config, train=dict(demo_config["train"], epochs=1, batch_size=4, warmup_epochs=0)
    )
    spec = build_run_spec(config, "demo_nuclei", "demo_unet", "full", registries)
    built = []
    real_build = densebench.train.loop.build_model
    monkeypatch.setattr(
        densebench.train.loop, "build_model", lambda *a: built.append(real_build(*a)) or built[-1]
    )
    monkeypatch.setattr(densebench.models.weights, "enforce_offline", lambda: {})
    run = ["--spec", spec.to_json(), "--store", str(small_store)]
    assert main(["train", *run, "--out-dir", str(tmp_path)]) == 0
    out = tmp_path / "confusion.npz"
    assert (
        main(["predict", *run, "--checkpoint", str(tmp_path / "best.pt"), "--out", str(out)]) == 0
    )
    assert out.is_file()
    (trained,) = built
    torch.manual_seed(int(spec.train.seed))
    start = UNet(spec.num_classes, base_channels=8)  # what build_model drew before training
    assert not torch.equal(start.outc.conv.weight, trained.outc.conv.weight)  # it trained
    _, reloaded = load_run(tmp_path / "best.pt", None, spec)
    x = torch.randn(2, 3, spec.input_size, spec.input_size)
    with torch.no_grad():
        assert torch.equal(trained.eval()(x), reloaded.eval()(x))
