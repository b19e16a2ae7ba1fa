"""What follows the encoder in the memory model: the adapters, the decoder and the loss.

Part of the GPU memory model (densebench.memory): the symbolic forward pass (densebench.memory.tape)
of the CNN and Transformer adapters (densebench.models.adapters), the token / skip decoder
(densebench.models.decoder) and the dice loss, and their parameter counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from densebench.geometry import decoder_scales
from densebench.memory.architecture import Mode, adapter_architecture
from densebench.memory.tape import FLOAT, HALF, Device, Sym, Tape, new, vit_block

SKIP_CHANNELS = (512, 256, 64)
"""Channels of the CNN adapter's skips (densebench.models.adapters.CNNAdapter.SKIP_CHANNELS)."""

GROUPS = 32
"""Groups of the CNN adapter's GroupNorms."""


def conv_out(side: int, k: int, stride: int, pad: int) -> int:
    """Output side of a convolution or pooling."""
    return (side + 2 * pad - k) // stride + 1


def conv_bn_relu(tape: Tape, x: Sym, cin: int, cout: int, pixels: float) -> Sym:
    """3x3 convolution, BatchNorm, in-place ReLU (the decoders' and the UNet's layer)."""
    return tape.relu_(tape.batch_norm(tape.conv(x, cin, cout, 3, pixels, True), cout))


def bottleneck(
    tape: Tape, x: Sym, images: float, sides: tuple[int, int], widths: tuple[int, int]
) -> Sym:
    """A ResNetV2 bottleneck (densebench.models.adapters.Bottleneck) from side sides[0] to
    sides[1], widths (cin, cout), cout / 4 inside."""
    (cin, cout), mid = widths, widths[1] // 4
    pin, pout = images * sides[0] ** 2, images * sides[1] ** 2
    residual = x
    if sides[0] != sides[1] or cin != cout:
        residual = tape.norm(tape.std_conv(x, cin, cout, 1, pout), images * cout, True)
    y = tape.relu_(tape.norm(tape.std_conv(x, cin, mid, 1, pin), images * GROUPS, True))
    y = tape.relu_(tape.norm(tape.std_conv(y, mid, mid, 3, pout), images * GROUPS, True))
    y = tape.norm(tape.std_conv(y, mid, cout, 1, pout), images * GROUPS, True)
    return tape.relu_(tape.add(residual, y))


def cnn_stage(
    tape: Tape,
    x: Sym,
    images: float,
    side: int,
    widths: tuple[int, int, int],
    units: int,
    checkpointing: bool = False,
) -> tuple[Sym, int, float]:
    """A stage of bottlenecks, the first one changing width (cin, cout) and stride (widths[2]);
    its output, side and (checkpointed: each bottleneck keeps its input) largest bottleneck's
    saved bytes."""
    cin, cout, stride = widths
    out, largest = conv_out(side, 3, stride, 1), 0.0
    for i in range(units):
        inner = Tape(tape.device) if checkpointing else tape
        if checkpointing:
            tape.keep(x)
        sides, io = ((side, out), (cin, cout)) if i == 0 else ((out, out), (cout, cout))
        x = bottleneck(inner, x, images, sides, io)
        largest = max(largest, inner.total if checkpointing else 0.0)
    return x, out, largest


def cnn_tape(
    tape: Tape,
    images: float,
    side: int,
    units: tuple[int, ...],
    discarded: bool,
    checkpointing: bool = False,
) -> tuple[list[tuple[Sym, int]], float, float]:
    """The CNN adapter's branch (densebench.models.adapters.CNNAdapter): its skips [(tensor,
    side)] at 1/8, 1/4, 1/2 (padded copies where a side is short), the bytes its discarded
    third stage saves while it runs (freed before the decoder runs) and, checkpointed, its
    largest bottleneck's saved bytes."""
    image = new(images * 3 * side * side, FLOAT, False)
    s2 = conv_out(side, 7, 2, 3)
    half = tape.std_conv(image, 3, 64, 7, images * s2 * s2)
    half = tape.relu_(tape.norm(half, images * GROUPS, True))
    s4 = conv_out(s2, 3, 2, 0)
    pooled = tape.maxpool(half, images * s4 * s4, 64)
    quarter, _, one = cnn_stage(tape, pooled, images, s4, (64, 256, 1), units[0], checkpointing)
    eighth, s8, two = cnn_stage(tape, quarter, images, s4, (256, 512, 2), units[1], checkpointing)
    transient = 0.0
    if discarded:
        stage3 = Tape(tape.device)
        cnn_stage(stage3, eighth, images, s8, (512, 1024, 2), units[2], checkpointing)
        transient = stage3.total  # never rebuilt: its output takes no part in the loss
    skips = []
    for tensor, got, want in ((eighth, s8, side // 8), (quarter, s4, side // 4), (half, s2, s2)):
        if got != want:
            tensor = new(tensor.numel / got**2 * want**2, tensor.size, tensor.grad)
        skips.append((tensor, want))
    return skips, transient, max(one, two)


@dataclass(frozen=True)
class Head:
    """What memory depends on after the encoder: token grid and embed dim, adapters, decoder."""

    dim: int
    grid: int
    prefix: int
    side: int
    classes: int
    scales: tuple[float, ...]
    hidden: int
    channels: tuple[int, ...]
    adapter_depth: int
    """Transformer-adapter blocks (0: none)."""
    cnn_units: tuple[int, ...] | None
    """CNN adapter's block units (None: none)."""
    cnn_discarded: bool
    """The CNN adapter computes (and discards) its third stage."""


def head_of(spec: Any, dim: int, patch: int, prefix: int) -> Head:
    """The run's adapters and decoder."""
    strategy = spec.strategy_record
    skip = strategy["decoder"] == "skip"
    return Head(
        dim=dim,
        grid=spec.input_size // patch,
        prefix=prefix,
        side=spec.input_size,
        classes=int(spec.num_classes),
        scales=(2.0,) * 4 if skip else decoder_scales(patch),
        hidden=int(spec.decoder.hidden_channels),
        channels=tuple(int(c) for c in spec.decoder.block_channels),
        adapter_depth=int(strategy.get("depth", 0)),
        cnn_units=tuple(strategy["block_units"]) if skip else None,
        cnn_discarded=skip and not spec.fixes.get("skip_discarded_cnn_stage"),
    )


def decoder_tape(
    tape: Tape,
    grid: Sym,
    head: Head,
    images: float,
    skips: list[tuple[Sym, int]] | None,
    checkpointing: bool,
) -> float:
    """TokenDecoder / SkipDecoder (densebench.models.decoder): conv_more, four upsampling
    blocks, the head; checkpointed blocks keep their inputs and their saved bytes move to the
    recompute peak (returned)."""
    x = conv_bn_relu(tape, grid, head.dim, head.hidden, images * head.grid**2)
    side, cin, largest = head.grid, head.hidden, 0.0
    for i, cout in enumerate(head.channels):
        skip = skips[i] if skips and i < len(skips) else None
        side = skip[1] if skip else int(side * head.scales[i])
        block = Tape(tape.device) if checkpointing else tape
        if checkpointing:
            tape.keep(x, *([skip[0]] if skip else []))
        width = cin + (SKIP_CHANNELS[i] if skip else 0)
        size = max(x.size, skip[0].size) if skip else x.size  # cat promotes to the larger
        up = new(images * side * side * width, size, True)  # upsampled (and concatenated)
        y = conv_bn_relu(block, up, width, cout, images * side * side)
        x = conv_bn_relu(block, y, cout, cout, images * side * side)
        largest = max(largest, block.total if checkpointing else 0.0)
        cin = cout
    tape.conv(x, cin, head.classes, 3, images * side * side, True)
    return largest


def loss_bytes(images: float, classes: int, side: int) -> float:
    """Dice loss (densebench.train.losses, fp32 outside autocast): saves the softmax output and
    the float one-hot (fp32, one per class and pixel), the half valid mask, two sums."""
    pixels = images * side * side
    return pixels * (2 * FLOAT * classes + HALF) + 2 * FLOAT * images * classes


@lru_cache(maxsize=4096)
def head_bytes(
    head: Head, images: float, encoder_grad: bool, checkpointing: bool, device: Device
) -> tuple[float, float, float, float]:
    """(adapter, decoder + loss, recompute peak, transient) bytes saved after the encoder."""
    tape = Tape(device)
    arch = adapter_architecture(head.dim)
    x = new(images * (head.grid**2 + head.prefix) * head.dim, FLOAT, encoder_grad)
    largest, transient, skips = 0.0, 0.0, None
    if head.adapter_depth:
        for _ in range(head.adapter_depth):
            block = Tape(device) if checkpointing else tape
            if checkpointing:
                tape.keep(x)
            x = vit_block(block, x, arch, Mode(True))
            largest = max(largest, block.total if checkpointing else 0.0)
        x = tape.norm(x, x.numel / head.dim, True)
    if head.cnn_units is not None:
        skips, transient, cnn_peak = cnn_tape(
            tape, images, head.side, head.cnn_units, head.cnn_discarded, checkpointing
        )
        largest = max(largest, cnn_peak)
    adapter = tape.total
    grid = new(images * head.grid**2 * head.dim, FLOAT, x.grad)  # tokens -> grid (a copy)
    peak = decoder_tape(tape, tape.cast(grid), head, images, skips, checkpointing)
    decoder = tape.total - adapter + loss_bytes(images, head.classes, head.side)
    return adapter, decoder, max(largest, peak), transient


@lru_cache(maxsize=1024)
def decoder_params(head: Head) -> int:
    """Parameters of the decoder (token or skip) with its head, and of the adapters."""
    skips = (*SKIP_CHANNELS, 0) if head.cnn_units else (0,) * len(head.channels)
    total = 9 * head.dim * head.hidden + 2 * head.hidden
    for cin, cout, sk in zip((head.hidden, *head.channels[:-1]), head.channels, skips, strict=True):
        total += 9 * (cin + sk) * cout + 9 * cout * cout + 4 * cout
    total += 9 * head.channels[-1] * head.classes + head.classes
    if head.adapter_depth:
        total += head.adapter_depth * adapter_architecture(head.dim).block_params + 2 * head.dim
    if head.cnn_units:
        total += cnn_params(head.cnn_units)
    return total


def cnn_params(units: tuple[int, ...]) -> int:
    """Parameters of the CNN adapter's ResNetV2 (all three stages)."""
    total, cin = 3 * 49 * 64 + 2 * 64, 64
    for cout, count in zip((256, 512, 1024), units, strict=True):
        mid = cout // 4
        for i in range(count):
            total += cin * mid + 9 * mid * mid + mid * cout + 4 * mid + 2 * cout
            total += (cin * cout + 2 * cout) if i == 0 else 0
            cin = cout
    return total
