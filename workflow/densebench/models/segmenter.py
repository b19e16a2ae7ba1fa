"""The segmentation model: backbone (+ strategy) -> token grid -> decoder -> logits.

A record of `family: unet` is no backbone: it builds the authors' UNet baseline instead
(densebench.models.unet), trained from scratch with strategy `full`. Both kinds share the
interface the training loop and prediction use (`Segmenter`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from densebench.geometry import decoder_scales
from densebench.models.adapters import CNNAdapter, TransformerAdapter
from densebench.models.backbone import TokenBackbone, build_backbone
from densebench.models.decoder import SkipDecoder, TokenDecoder
from densebench.models.strategies import apply_encoder_strategy
from densebench.models.unet import FAMILY as UNET_FAMILY
from densebench.models.unet import UNet, build_unet
from densebench.spec import RunSpec


class SegmentationModel(nn.Module):
    """A PFM with one adaptation strategy and the paper's decoder."""

    def __init__(self, backbone: TokenBackbone, spec: RunSpec):
        super().__init__()
        strategy = spec.strategy_record
        self.backbone = backbone
        self.adapted_modules = apply_encoder_strategy(
            backbone.encoder, strategy, spec.model_record, spec.fixes, spec.model
        )
        self.encoder_trains = any(p.requires_grad for p in backbone.parameters())
        fixes = spec.fixes
        self.keep_encoder_eval = fixes["frozen_encoder_eval"] and not self.encoder_trains
        dim, classes = backbone.embed_dim, spec.num_classes
        self.token_adapter = None
        self.cnn = None
        self.channels_last = False
        if "depth" in strategy:
            self.token_adapter = TransformerAdapter(
                dim, int(strategy["depth"]), strategy["drop_path"], strategy["init_values"]
            )
        width = {"hidden": spec.decoder.hidden_channels, "channels": spec.decoder.block_channels}
        if strategy["decoder"] == "skip":
            compute_stage3 = not fixes["skip_discarded_cnn_stage"]
            self.cnn = CNNAdapter(strategy["block_units"], compute_stage3)
            self.decoder = SkipDecoder(dim, classes, CNNAdapter.SKIP_CHANNELS, **width)
        else:
            self.decoder = TokenDecoder(dim, classes, decoder_scales(backbone.patch_size), **width)

    def use_channels_last(self) -> None:
        """channels_last memory format for the convolutional parts (GPU throughput)."""
        self.channels_last = True
        for part in (self.decoder, self.cnn):
            if part is not None:
                part.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> SegmentationModel:
        """Train mode; a frozen encoder stays in eval mode with the `frozen_encoder_eval` fix."""
        super().train(mode)
        if self.keep_encoder_eval:
            self.backbone.eval()
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens of the (possibly adapted) encoder, prefix included."""
        if self.encoder_trains:
            return self.backbone.all_tokens(x)
        with torch.no_grad():  # no encoder parameter needs a gradient
            return self.backbone.all_tokens(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, S, S) -> logits (B, C, S, S)."""
        return self.decode(self.encode(x), x)

    def decode(self, tokens: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (B, P+N, D) of image x -> logits (B, C, S, S): the strategy's
        trainable parts (adapters, decoder). A shared training job (densebench.train.shared)
        runs `encode` once and `decode` per run."""
        if self.token_adapter is not None:
            tokens = self.token_adapter(tokens)
        grid = tokens_to_grid(tokens[:, self.backbone.num_prefix_tokens :, :])
        if self.channels_last:
            grid = grid.contiguous(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self.decoder(grid) if self.cnn is None else self.decoder(grid, self.cnn(x))
        if logits.shape[-2:] != x.shape[-2:]:
            logits = nn.functional.interpolate(
                logits, size=x.shape[-2:], mode="bilinear", align_corners=False
            )
        return logits


def tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, D) patch tokens of a square input -> (B, D, sqrt(N), sqrt(N))."""
    b, n, d = tokens.shape
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"{n} patch tokens do not form a square grid; inputs must be square")
    return tokens.transpose(1, 2).reshape(b, d, side, side)


Segmenter = SegmentationModel | UNet
"""What a run spec builds: a PFM segmentation model or the UNet baseline."""


def is_unet(spec: RunSpec) -> bool:
    """Whether the run's model record is the UNet baseline (no backbone)."""
    return spec.model_record["family"] == UNET_FAMILY


def unet_of(spec: RunSpec) -> UNet:
    """The run's UNet (strategy checked: `full` only)."""
    return build_unet(
        spec.model, spec.model_record, spec.num_classes, spec.strategy, spec.strategy_record
    )


def build_model(spec: RunSpec, weights_dir: Path | None = None) -> Segmenter:
    """Build the model of a run spec, seeded so random-init backbones are reproducible."""
    torch.manual_seed(int(spec.train.seed))
    if is_unet(spec):
        return unet_of(spec)
    backbone = build_backbone(spec.model, spec.model_record, weights_dir)
    return SegmentationModel(backbone, spec)


def build_shared_models(specs: list[RunSpec], weights_dir: Path | None = None) -> list[Segmenter]:
    """The models of several frozen-encoder runs of one (dataset, model) around one backbone,
    each run's trainable parts drawn from the same random numbers as `build_model` draws for
    that run alone (the seed, then the backbone, then the run's own modules)."""
    first = specs[0]
    torch.manual_seed(int(first.train.seed))
    backbone = build_backbone(first.model, first.model_record, weights_dir)
    after_backbone = torch.get_rng_state()
    models = []
    for spec in specs:
        torch.set_rng_state(after_backbone)
        models.append(SegmentationModel(backbone, spec))
    return models


def build_on_meta(spec: RunSpec) -> Segmenter:
    """The run's model with random weights on the meta device: shapes and counts, no memory."""
    record = dict(spec.model_record, weights="random")
    with torch.device("meta"):
        if is_unet(spec):
            return unet_of(spec)
        return SegmentationModel(build_backbone(spec.model, record), spec)


def trainable_state(model: Segmenter) -> dict[str, torch.Tensor]:
    """What a checkpoint keeps: trainable parameters and the buffers outside the backbone,
    copied to the host (a GPU run's best state and resume snapshot hold no GPU memory)."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n for n, _ in model.named_buffers() if not n.startswith("backbone.")}
    return {
        k: v.detach().to("cpu", copy=True)
        for k, v in model.state_dict().items()
        if k in trainable | buffers
    }


def load_trainable_state(model: Segmenter, state: dict[str, torch.Tensor]) -> None:
    """Load a trainable-state checkpoint; everything missing must belong to the backbone."""
    result = model.load_state_dict(state, strict=False)
    expected_missing = {n for n, p in model.named_parameters() if not p.requires_grad}
    expected_missing |= {n for n, _ in model.named_buffers() if n.startswith("backbone.")}
    missing = set(result.missing_keys) - expected_missing
    if missing or result.unexpected_keys:
        raise ValueError(
            f"checkpoint does not fit the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}"
        )


def backbone_fingerprint(model: Segmenter) -> float:
    """A cheap checksum of the frozen backbone weights, to catch a mismatched rebuild (0 for
    the UNet: nothing of it is frozen, all of it is in the checkpoint)."""
    if isinstance(model, UNet):
        return 0.0
    with torch.no_grad():
        return float(
            sum(p.double().abs().sum() for p in model.backbone.parameters() if not p.requires_grad)
        )


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total}
