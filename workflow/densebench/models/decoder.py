"""The paper's token -> mask decoders (protocol.md §2.1 and the CNN adapter's skip decoder).

TokenDecoder: (B, D, h, w) token grid -> conv_more (D->512) -> four [upsample, 2x conv-BN-ReLU]
blocks (512->256->128->64->16, no skips) -> 3x3 head to C classes; upsampling factors multiply
to the patch size so the logits have the input's resolution.
SkipDecoder: the same with skip features concatenated in the first three blocks (§2.2, CNN
adapter): (512+512)->256, (256+256)->128, (128+64)->64, 64->16, every block upsampling by 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from densebench.models.block_checkpointing import checkpointed

DECODER_CHANNELS = (256, 128, 64, 16)
"""Output channels of the four decoder blocks."""
HIDDEN_CHANNELS = 512
"""Channels of conv_more, the first decoder layer."""


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv without bias, BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class DecoderBlock(nn.Module):
    """Bilinear upsampling (align_corners=True), optional skip concat, two conv-BN-ReLU."""

    def __init__(self, cin: int, cout: int, scale: float, skip_channels: int = 0):
        super().__init__()
        self.scale = scale
        self.conv1 = conv_bn_relu(cin + skip_channels, cout)
        self.conv2 = conv_bn_relu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """Upsample x, fuse the skip (resized to match when needed), convolve."""
        if self.scale != 1:
            x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=True)
        if skip is not None:
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class _Decoder(nn.Module):
    """What both decoders build, in this order: conv_more (D -> hidden), the blocks, the head."""

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        hidden: int,
        channels: Sequence[int],
        blocks: Sequence[tuple[float, int]],
    ):
        """`blocks` holds each block's (upsampling factor, skip channels)."""
        super().__init__()
        self.conv_more = conv_bn_relu(embed_dim, hidden)
        cins = (hidden, *channels[:-1])
        self.blocks = nn.ModuleList(
            DecoderBlock(cin, cout, scale, skip)
            for cin, cout, (scale, skip) in zip(cins, channels, blocks, strict=True)
        )
        self.head = nn.Conv2d(channels[-1], num_classes, 3, padding=1)
        self.grad_checkpointing = False
        """Activation checkpointing of each block (densebench.models.checkpointing)."""


class TokenDecoder(_Decoder):
    """Shared decoder of all strategies but the CNN adapter."""

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        scales: Sequence[float],
        hidden: int = HIDDEN_CHANNELS,
        channels: Sequence[int] = DECODER_CHANNELS,
    ):
        super().__init__(embed_dim, num_classes, hidden, channels, [(s, 0) for s in scales])

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) -> logits (B, C, h*patch, w*patch)."""
        x = self.conv_more(grid)
        for block in self.blocks:
            x = checkpointed(block, x) if self.grad_checkpointing else block(x)
        return self.head(x)


class SkipDecoder(_Decoder):
    """Decoder of the CNN adapter: fuses the CNN branch's 1/8, 1/4 and 1/2 features."""

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        skip_channels: Sequence[int],
        hidden: int = HIDDEN_CHANNELS,
        channels: Sequence[int] = DECODER_CHANNELS,
    ):
        blocks = [(2.0, skip) for skip in (*skip_channels, 0)]  # every block upsamples by 2
        super().__init__(embed_dim, num_classes, hidden, channels, blocks)

    def forward(self, grid: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, D, h, w) and skips [1/8, 1/4, 1/2] -> logits."""
        x = self.conv_more(grid)
        for i, block in enumerate(self.blocks):
            skip = skips[i] if i < len(skips) else None
            x = checkpointed(block, x, skip) if self.grad_checkpointing else block(x, skip)
        return self.head(x)
