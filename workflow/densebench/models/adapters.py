"""Adapters of the paper (protocol.md §2.2): the CNN branch and the Transformer adapter.

CNNAdapter: a TransUNet ResNetV2 (weight-standardised convs, GroupNorm) run on the image in
parallel with the frozen PFM; its 1/2, 1/4 and 1/8 maps feed the skip decoder. Its third stage
(1/16) is computed and discarded under the paper's protocol, exactly as the authors' code does.
A 1/4 or 1/8 map that is 1-2 px short is zero-padded for the skip only; the next stage runs on
the unpadded map ([F] models/cnn_adapter.py, ResNetV2Adapter.forward).
TransformerAdapter: `depth` new pre-norm ViT blocks over all tokens, then a fresh LayerNorm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from densebench.models.block_checkpointing import checkpointed


class StdConv2d(nn.Conv2d):
    """Conv2d with weight standardisation (per output filter, eps 1e-5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise the weight, then convolve."""
        w = self.weight
        var, mean = torch.var_mean(w, dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = (w - mean) / torch.sqrt(var + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def gn(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, as in TransUNet."""
    return nn.GroupNorm(32, channels, eps=1e-6)


class Bottleneck(nn.Module):
    """TransUNet's ResNetV2 bottleneck unit (1x1, 3x3 with stride, 1x1; projection shortcut)."""

    def __init__(self, cin: int, cout: int, cmid: int, stride: int = 1):
        super().__init__()
        self.conv1, self.gn1 = StdConv2d(cin, cmid, 1, bias=False), gn(cmid)
        self.conv2 = StdConv2d(cmid, cmid, 3, stride=stride, padding=1, bias=False)
        self.gn2 = gn(cmid)
        self.conv3, self.gn3 = StdConv2d(cmid, cout, 1, bias=False), gn(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = StdConv2d(cin, cout, 1, stride=stride, bias=False)
            self.gn_proj = nn.GroupNorm(cout, cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual unit."""
        residual = x if self.downsample is None else self.gn_proj(self.downsample(x))
        y = self.relu(self.gn1(self.conv1(x)))
        y = self.relu(self.gn2(self.conv2(y)))
        y = self.gn3(self.conv3(y))
        return self.relu(residual + y)


def stage(cin: int, cout: int, units: int, stride: int) -> nn.Sequential:
    """A stack of bottlenecks; the first one changes channels and stride."""
    layers = [Bottleneck(cin, cout, cout // 4, stride)]
    layers += [Bottleneck(cout, cout, cout // 4) for _ in range(units - 1)]
    return nn.Sequential(*layers)


def pad_skip(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad a stage's output bottom/right to size x size for the skip list.

    The authors' rule ([F] models/cnn_adapter.py, ResNetV2Adapter.forward, after block1 and
    block2): when the map's height differs from int(in_size / k), copy it into the top-left of a
    zero map of that size, asserting that 1 or 2 rows are missing (`assert pad < 3 and pad > 0`);
    a larger map is never cropped. Only the skip is padded; the next stage gets the unpadded map.
    """
    short = size - x.shape[-2]
    if short == 0:
        return x
    if not 0 < short < 3:
        raise ValueError(
            f"feature map {tuple(x.shape[-2:])} should be {size} x {size}: the authors pad 1 or "
            "2 missing pixels only"
        )
    return F.pad(x, (0, size - x.shape[-1], 0, short))


class CNNAdapter(nn.Module):
    """ResNetV2 branch giving skip features [1/8: 512, 1/4: 256, 1/2: 64 channels]."""

    SKIP_CHANNELS = (512, 256, 64)

    def __init__(
        self, block_units: Sequence[int] = (3, 4, 9), compute_discarded_stage: bool = True
    ):
        super().__init__()
        self.root = nn.Sequential(
            StdConv2d(3, 64, 7, stride=2, padding=3, bias=False), gn(64), nn.ReLU(inplace=True)
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=0)
        self.stage1 = stage(64, 256, block_units[0], 1)
        self.stage2 = stage(256, 512, block_units[1], 2)
        self.stage3 = stage(512, 1024, block_units[2], 2)
        self.compute_discarded_stage = compute_discarded_stage
        self.grad_checkpointing = False
        """Activation checkpointing of each bottleneck (densebench.models.checkpointing)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image (B, 3, S, S) -> skips [1/8, 1/4, 1/2], as ResNetV2Adapter.forward of [F].

        Each stage runs on the previous stage's unpadded output; only the copy in the skip list
        is padded to int(S / 4) or int(S / 8).
        """
        size = x.shape[-2]
        half = self.root(x)
        quarter = self.run(self.stage1, self.pool(half))
        eighth = self.run(self.stage2, quarter)
        if self.compute_discarded_stage:
            self.run(self.stage3, eighth)  # the authors compute stage 3 and drop its output
        return [pad_skip(eighth, size // 8), pad_skip(quarter, size // 4), half]

    def run(self, units: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """A stage's bottlenecks in order, each checkpointed when `grad_checkpointing` is on."""
        for unit in units:
            x = checkpointed(unit, x) if self.grad_checkpointing else unit(x)
        return x


class TransformerAdapter(nn.Module):
    """`depth` ViT blocks (LayerScale, drop-path 0 -> max) over all tokens, then LayerNorm."""

    def __init__(self, dim: int, depth: int = 2, drop_path: float = 0.1, init_values: float = 1e-5):
        super().__init__()
        from timm.models.vision_transformer import Block

        rates = [drop_path * i / max(1, depth - 1) for i in range(depth)]  # linear 0 -> max
        self.blocks = nn.Sequential(
            *[
                Block(
                    dim,
                    max(1, dim // 64),
                    4.0,
                    qkv_bias=True,
                    init_values=init_values,
                    drop_path=rate,
                )
                for rate in rates
            ]
        )
        self.norm = nn.LayerNorm(dim)
        self.grad_checkpointing = False
        """Activation checkpointing of each block (densebench.models.checkpointing)."""
        self.apply(_init_weights)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, P+N, D) -> (B, P+N, D)."""
        for block in self.blocks:
            tokens = checkpointed(block, tokens) if self.grad_checkpointing else block(tokens)
        return self.norm(tokens)


def _init_weights(module: nn.Module) -> None:
    """Linear: trunc-normal(0.02), zero bias; LayerNorm: (1, 0)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
