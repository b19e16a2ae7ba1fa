"""Activation checkpointing (densebench.models.checkpointing): the same loss, gradients and
BatchNorm statistics as without it (bit for bit, torch.equal, on the CPU), less saved for
backward, and the plain path in eval mode or under no_grad.

Every family is built at reduced depth (two blocks) and width with random weights, drop-path or
dropout on where the family has it (so the recomputation must replay the same random masks), and
trained one step on a tiny input. LoRA/DoRA runs use the `lora_all_families` fix so that the
transformers and MUSK encoders are adapted (the paper's protocol would freeze them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densebench.models import block_checkpointing
from densebench.models.backbone import TokenBackbone
from densebench.models.checkpointing import enable_checkpointing
from densebench.models.segmenter import SegmentationModel, Segmenter, build_model
from densebench.models.unet import UNet
from densebench.spec import RunSpec, build_run_spec
from tests.models.backbone_helpers import family_kwargs, record_for

WIDTH = 64
"""Reduced embedding width of every family."""
RATES = {
    "uni_v1": {"drop_path_rate": 0.2},
    "conch_v1_5": {"drop_path_rate": 0.2},
    "hibou_l": {"drop_path_rate": 0.2},
    "phikon": {"hidden_dropout_prob": 0.2},
    "musk": {},
}
REDUCED = {name: {**kw, **RATES[name]} for name, kw in family_kwargs(2, WIDTH).items()}
"""Two-block kwargs of one model per family (timm, conch, transformers x2, musk)."""
ENCODER_BLOCKS = {
    "uni_v1": "backbone.encoder.blocks",
    "conch_v1_5": "backbone.encoder.blocks",
    "hibou_l": "backbone.encoder.encoder.layer",
    "phikon": "backbone.encoder.layers",
    "musk": "backbone.encoder.beit3.encoder.layers",
}
"""Where each family's checkpointed blocks live."""


def reduced_spec(demo_config, registries, model: str, strategy: str) -> RunSpec:
    """Run spec of a reduced random model on demo_nuclei, 2 x 2 patches, every model adapted."""
    if model in REDUCED:
        record = record_for(registries, model, **REDUCED[model])
        record["embed_dim"] = WIDTH
        registries = dataclasses.replace(registries, models={**registries.models, model: record})
    spec = build_run_spec(demo_config, "demo_nuclei", model, strategy, registries)
    side = 2 * int(spec.model_record["patch_size"])
    return dataclasses.replace(
        spec, input_size=side, fixes={**spec.fixes, "lora_all_families": True}
    )


def build(spec: RunSpec, on: bool) -> tuple[Segmenter, list[str]]:
    """The run's model (seeded), LoRA's B factors made non-zero, checkpointing on or off."""
    model = build_model(spec)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)  # B = 0 would leave A without a gradient
    return model, enable_checkpointing(model, spec.model) if on else []


def batch(spec: RunSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random images and label maps of the run's input size."""
    generator = torch.Generator().manual_seed(3)
    side = spec.input_size
    x = torch.randn(2, 3, side, side, generator=generator)
    y = torch.randint(0, spec.num_classes, (2, side, side), generator=generator)
    return x, y


def train_step(model: Segmenter, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """One training-mode forward/backward (seeded drop-path); the loss and the gradients."""
    model.train()
    torch.manual_seed(7)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def assert_same_step(spec: RunSpec) -> list[str]:
    """Train one step with and without checkpointing: bit-identical loss, gradients and
    buffers (BatchNorm statistics); returns the checkpointed parts."""
    x, y = batch(spec)
    (plain, _), (ckpt, parts) = build(spec, False), build(spec, True)
    loss, grads = train_step(plain, x, y)
    loss_ckpt, grads_ckpt = train_step(ckpt, x, y)
    assert torch.equal(loss, loss_ckpt)
    assert grads.keys() == grads_ckpt.keys()
    for name, grad in grads.items():  # None: unused (MUSK's text experts, the mask token)
        assert (grad is None) == (grads_ckpt[name] is None), name
        assert grad is None or torch.equal(grad, grads_ckpt[name]), name
    used = [name for name, grad in grads.items() if grad is not None and grad.abs().sum() > 0]
    assert used
    if isinstance(ckpt, SegmentationModel):  # the encoder's gradients are checked too
        assert any(name.startswith("backbone.") for name in used) == ckpt.encoder_trains
    buffers_ckpt = dict(ckpt.named_buffers())
    for name, buffer in plain.named_buffers():
        assert torch.equal(buffer, buffers_ckpt[name]), name
    return parts


def saved_bytes(forward: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for backward during `forward()`."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = forward()
        total = sum(storages.values())
    del out
    return total


@pytest.mark.parametrize("strategy", ["lora", "dora", "full"])
@pytest.mark.parametrize("model", list(REDUCED))
def test_checkpointing_keeps_loss_and_gradients(demo_config, registries, model, strategy):
    spec = reduced_spec(demo_config, registries, model, strategy)
    parts = assert_same_step(spec)
    assert parts == [ENCODER_BLOCKS[model], "decoder.blocks"]


@pytest.mark.parametrize("model", list(REDUCED))
def test_encoder_saves_less_for_backward_and_evaluates_plainly(demo_config, registries, model):
    spec = reduced_spec(demo_config, registries, model, "full")
    x, _ = batch(spec)
    (plain, _), (ckpt, _) = build(spec, False), build(spec, True)
    plain.train(), ckpt.train()
    trained = [saved_bytes(lambda m=m: m.backbone.all_tokens(x)) for m in (plain, ckpt)]
    assert trained[1] < trained[0] / 2
    plain.eval(), ckpt.eval()  # eval with gradients enabled: the plain path saves everything
    evaluated = [saved_bytes(lambda m=m: m.backbone.all_tokens(x)) for m in (plain, ckpt)]
    assert evaluated[0] == evaluated[1] > trained[1]
    with torch.no_grad():
        assert torch.equal(plain(x), ckpt(x))


def test_transformers_layers_checkpoint_without_reentrancy(demo_config, registries):
    spec = reduced_spec(demo_config, registries, "hibou_l", "full")
    model, _ = build(spec, True)
    layers = list(model.backbone.encoder.encoder.layer)
    assert len(layers) == 2
    for layer in layers:
        assert layer.gradient_checkpointing
        assert layer._gradient_checkpointing_func.keywords["use_reentrant"] is False


@pytest.mark.parametrize("strategy", ["transformer_adapter", "cnn_adapter", "frozen"])
def test_frozen_encoder_runs_checkpoint_adapter_and_decoder(demo_config, registries, strategy):
    spec = reduced_spec(demo_config, registries, "demo_vit_p16", strategy)
    parts = assert_same_step(spec)
    adapter = {
        "transformer_adapter": ["token_adapter.blocks"],
        "cnn_adapter": ["cnn.stage1", "cnn.stage2", "cnn.stage3"],
    }
    assert parts == [*adapter.get(strategy, []), "decoder.blocks"]
    x, _ = batch(spec)
    (plain, _), (ckpt, _) = build(spec, False), build(spec, True)
    assert type(ckpt.backbone.encoder.blocks) is nn.Sequential  # a frozen encoder is left alone
    plain.train(), ckpt.train()
    tokens = plain.encode(x)
    grid = tokens[:, 1:].transpose(1, 2).reshape(2, -1, 2, 2)
    if strategy == "transformer_adapter":
        adapted = [saved_bytes(lambda m=m: m.token_adapter(tokens)) for m in (plain, ckpt)]
        assert adapted[1] < adapted[0] / 2
    skips = None
    if strategy == "cnn_adapter":
        branch = [saved_bytes(lambda m=m: m.cnn(x)) for m in (plain, ckpt)]
        assert branch[1] < branch[0] / 2
        skips = plain.cnn(x)
    decoded = [
        saved_bytes(lambda m=m: m.decoder(grid) if skips is None else m.decoder(grid, skips))
        for m in (plain, ckpt)
    ]
    assert decoded[1] < decoded[0] / 2


def test_unet_stages_are_checkpointed(demo_config, registries):
    spec = reduced_spec(demo_config, registries, "demo_unet", "full")
    spec = dataclasses.replace(spec, input_size=32)
    assert assert_same_step(spec) == list(UNet.CHECKPOINTED_STAGES)


def test_checkpoint_runs_only_in_training_with_gradients(demo_config, registries, monkeypatch):
    calls = []
    plain_checkpoint = block_checkpointing.checkpoint

    def spy(*args, **kwargs):
        calls.append(kwargs["use_reentrant"])
        return plain_checkpoint(*args, **kwargs)

    monkeypatch.setattr(block_checkpointing, "checkpoint", spy)
    spec = reduced_spec(demo_config, registries, "musk", "full")
    model, _ = build(spec, True)
    x, _ = batch(spec)
    model.eval()
    model(x)
    model.train()
    with torch.no_grad():
        model(x)
    assert calls == []
    model(x)
    assert calls == [False] * 6  # two MUSK layers and four decoder blocks, non-reentrant


def test_trainable_encoder_without_a_hook_is_an_error(demo_config, registries):
    spec = reduced_spec(demo_config, registries, "demo_vit_p16", "full")
    model = SegmentationModel(TokenBackbone(nn.Linear(3, 48), 1, 48, 16), spec)
    with pytest.raises(ValueError, match="model demo_vit_p16: its encoder \\(Linear\\) trains"):
        enable_checkpointing(model, spec.model)
    frozen = dataclasses.replace(
        spec, strategy_record={**spec.strategy_record, "encoder": "frozen"}
    )
    model = SegmentationModel(TokenBackbone(nn.Linear(3, 48), 1, 48, 16), frozen)
    assert enable_checkpointing(model) == ["decoder.blocks"]
