"""The UNet baseline in the memory model (record family `unet`): its own symbolic forward pass
and parameter count (densebench.models.unet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from densebench.memory.head import conv_bn_relu
from densebench.memory.tape import FLOAT, HALF, Sym, Tape, new


def unet_tape(
    tape: Tape, images: float, side: int, width: int, classes: int, checkpointing: bool
) -> float:
    """The authors' UNet (densebench.models.unet, bilinear): DoubleConv stages with 2x2 max
    pooling, bilinear upsampling with concatenated skips, a 1x1 head. Checkpointed stages keep
    their inputs; returns the largest stage's saved bytes (the recompute peak)."""
    c, largest = width, 0.0
    sides = [side >> i for i in range(5)]

    def stage(x: Sym, skip: Sym | None, cins: tuple[int, int, int], s: int) -> Sym:
        nonlocal largest
        cin, mid, cout = cins
        inner = Tape(tape.device) if checkpointing else tape
        if checkpointing:
            tape.keep(*([x] if x.grad else []), *([skip] if skip else []))
        if skip is not None:  # Up: cat([skip, upsampled x]) at the skip's side
            x = new(images * s * s * cin, HALF, True)
        elif s != side:  # Down: max pooling first
            x = inner.maxpool(x, images * s * s, cin)
        x = conv_bn_relu(inner, x, cin, mid, images * s * s)
        x = conv_bn_relu(inner, x, mid, cout, images * s * s)
        largest = max(largest, inner.total if checkpointing else 0.0)
        return x

    outs = [stage(new(images * 3 * side * side, FLOAT, False), None, (3, c, c), side)]
    for i, (cin, cout) in enumerate(((c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c), (8 * c, 8 * c))):
        outs.append(stage(outs[-1], None, (cin, cout, cout), sides[i + 1]))
    x = outs.pop()
    for i, (cin, cout) in enumerate(((16 * c, 4 * c), (8 * c, 2 * c), (4 * c, c), (2 * c, c))):
        x = stage(x, outs.pop(), (cin, cin // 2, cout), sides[3 - i])
    tape.conv(x, c, classes, 1, images * side * side, True)
    return largest


def unet_params(width: int, classes: int) -> int:
    """Parameters of the bilinear UNet (its layer formula)."""

    def double(cin: int, mid: int, cout: int) -> int:
        return 9 * cin * mid + 2 * mid + 9 * mid * cout + 2 * cout

    c = width
    down = double(3, c, c) + sum(
        double(a, b, b) for a, b in ((c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c), (8 * c, 8 * c))
    )
    ups = ((16 * c, 4 * c), (8 * c, 2 * c), (4 * c, c), (2 * c, c))
    return down + sum(double(a, a // 2, b) for a, b in ups) + c * classes + classes


def unet_width(record: Mapping[str, Any]) -> int:
    """Base channels of a UNet record."""
    return int((record.get("kwargs") or {}).get("base_channels", 64))
