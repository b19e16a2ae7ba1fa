"""The authors' UNet baseline: a convolutional segmenter trained from scratch, no PFM.

The same architecture as [F] models/unet.py (classes DoubleConv, Down, Up, OutConv, UNet and
the factory create_unet_model, which [F] models/pfm_seg_models.py create_segmentation_model
calls when `pfm_name` is 'unet'), reimplemented here:

* DoubleConv: (3x3 conv without bias, BatchNorm, ReLU) twice, the first to `mid` channels
  (default: the output channels);
* Down: 2x2 max pooling, then a DoubleConv;
* Up (bilinear, the default): x2 bilinear upsampling with align_corners=True, the upsampled map
  zero-padded to the skip's size (half the difference before, the rest after), concatenated
  after the skip, then DoubleConv(in, out, mid=in // 2); without `bilinear` a 2x2 stride-2
  transposed convolution to in // 2 channels and DoubleConv(in, out);
* widths c, 2c, 4c, 8c and 16c // f at the bottleneck (f = 2 with bilinear upsampling, else 1),
  decoder Up(16c, 8c // f), Up(8c, 4c // f), Up(4c, 2c // f), Up(2c, c), then a 1x1 conv with
  bias to the classes; c = 64 in the authors' code;
* a one-channel input is repeated to three channels.

[F] scripts/train.py trains every parameter of it from PyTorch's default init with the PFMs'
optimiser and schedule, on ImageNet-normalised inputs ([F] data/transforms.py
get_model_normalization, default branch), and [F] configs/unet.yaml with cross-entropy at batch
4 (densebench.spec.UNET_PAPER_RECIPE; fix `unet_grid_recipe`: the grid's soft Dice and batch):
here that is strategy `full` of a `family: unet` record; any other strategy is refused
(`check_strategy`). Module names follow the authors', so
state-dict keys are the same. Differences: `forward` returns the logits (theirs a dict
{'out': logits}), like SegmentationModel; `base_channels` (c) is a knob whose default is theirs,
smaller only for the CPU demo (demo_unet); the decoder settings of the config do not apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from densebench.models.block_checkpointing import checkpointed
from densebench.registry import strategy_problem

FAMILY = "unet"
"""The registry `family` of UNet records (densebench.models.segmenter dispatches on it)."""


class DoubleConv(nn.Module):
    """Two (3x3 conv without bias, BatchNorm, ReLU) layers: cin -> mid -> cout."""

    def __init__(self, cin: int, cout: int, mid: int | None = None):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(*conv_bn_relu(cin, mid), *conv_bn_relu(mid, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, cin, H, W) -> (B, cout, H, W)."""
        return self.double_conv(x)


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    """A bias-free 3x3 conv (padding 1), BatchNorm and ReLU."""
    return [
        nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class Down(nn.Module):
    """Halve the resolution (2x2 max pooling), then a DoubleConv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, cin, H, W) -> (B, cout, H // 2, W // 2)."""
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upsample x2, pad to the skip, concatenate [skip, upsampled], then a DoubleConv."""

    def __init__(self, cin: int, cout: int, bilinear: bool = True):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(cin, cout)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Deep features (B, ., h, w) and the skip (B, ., H, W) -> (B, cout, H, W)."""
        upsampled = pad_to(self.up(deep), skip)
        return self.conv(torch.cat([skip, upsampled], dim=1))


def pad_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Zero-pad x to the spatial size of reference: half the difference before, rest after."""
    dy = reference.shape[-2] - x.shape[-2]
    dx = reference.shape[-1] - x.shape[-1]
    return F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])


class OutConv(nn.Module):
    """The 1x1 classifier convolution (with bias)."""

    def __init__(self, cin: int, classes: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, cin, H, W) -> logits (B, classes, H, W)."""
        return self.conv(x)


class UNet(nn.Module):
    """The authors' UNet; forward maps an image (B, 3 or 1, H, W) to logits (B, C, H, W).

    Every parameter trains (from scratch); it has no backbone, no patch tokens and no adapters.
    """

    CHECKPOINTED_STAGES = ("inc", "down1", "down2", "down3", "down4", "up1", "up2", "up3", "up4")
    """The stages `grad_checkpointing` runs through densebench.models.checkpointing."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        base_channels: int = 64,
        bilinear: bool = True,
    ):
        super().__init__()
        c, factor = int(base_channels), 2 if bilinear else 1
        self.in_channels, self.num_classes, self.bilinear = in_channels, num_classes, bilinear
        self.bottleneck_channels = 16 * c // factor
        self.channels_last = False
        self.adapted_modules: list[str] = []  # none (what SegmentationModel's provenance lists)
        self.encoder_trains = True  # every parameter trains, the encoder half included
        self.keep_encoder_eval = False  # no frozen encoder to hold in eval mode
        self.grad_checkpointing = False  # activation checkpointing of each stage
        self.inc = DoubleConv(in_channels, c)
        self.down1, self.down2 = Down(c, 2 * c), Down(2 * c, 4 * c)
        self.down3, self.down4 = Down(4 * c, 8 * c), Down(8 * c, self.bottleneck_channels)
        self.up1 = Up(16 * c, 8 * c // factor, bilinear)
        self.up2 = Up(8 * c, 4 * c // factor, bilinear)
        self.up3 = Up(4 * c, 2 * c // factor, bilinear)
        self.up4 = Up(2 * c, c, bilinear)
        self.outc = OutConv(c, num_classes)

    def use_channels_last(self) -> None:
        """channels_last memory format for the whole network (GPU throughput)."""
        self.channels_last = True
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W) (or one channel, repeated) -> logits (B, C, H, W)."""
        if x.shape[1] == 1 and self.in_channels != 1:
            x = x.repeat(1, self.in_channels, 1, 1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x1 = self.stage(self.inc, x)
        x2 = self.stage(self.down1, x1)
        x3 = self.stage(self.down2, x2)
        x4 = self.stage(self.down3, x3)
        x = self.stage(self.up1, self.stage(self.down4, x4), x4)
        x = self.stage(self.up2, x, x3)
        x = self.stage(self.up3, x, x2)
        return self.outc(self.stage(self.up4, x, x1))

    def stage(self, module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
        """Run one stage, checkpointed when `grad_checkpointing` is on."""
        return checkpointed(module, *args) if self.grad_checkpointing else module(*args)


def check_strategy(model: str, strategy: str, record: Mapping[str, Any]) -> None:
    """A UNet trains every parameter from scratch: only a plain `full` strategy applies
    (densebench.registry.strategy_problem)."""
    problem = strategy_problem(model, {"family": "unet"}, strategy, record)
    if problem:
        raise ValueError(problem)


def build_unet(
    model: str,
    record: Mapping[str, Any],
    num_classes: int,
    strategy: str,
    strategy_record: Mapping[str, Any],
) -> UNet:
    """The UNet of a `family: unet` registry record (kwargs: base_channels, bilinear,
    in_channels), checked against the strategy and the record's `embed_dim` (bottleneck)."""
    check_strategy(model, strategy, strategy_record)
    kwargs = dict(record.get("kwargs") or {})
    unknown = set(kwargs) - {"base_channels", "bilinear", "in_channels"}
    if unknown:
        raise ValueError(
            f"model {model}: unknown UNet kwargs {sorted(unknown)}; "
            "valid: base_channels, bilinear, in_channels"
        )
    net = UNet(num_classes, **kwargs)
    if int(record["embed_dim"]) != net.bottleneck_channels:
        raise ValueError(
            f"model {model}: registry says embed_dim={record['embed_dim']}, the UNet's "
            f"bottleneck has {net.bottleneck_channels} channels"
        )
    return net
