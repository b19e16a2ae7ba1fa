"""The symbolic forward pass: which op saves which tensor for backward, in which dtype.

Part of the GPU memory model (densebench.memory; its docstring states the rules): a `Tape`
follows the real modules op by op and records, once per storage, what autograd saves; here the
operations and the transformer block of the encoders and the Transformer adapter.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from densebench.memory.architecture import Architecture, Mode

Device = Literal["cuda", "cpu"]

HALF, FLOAT, LONG = 2, 4, 8
"""Bytes per element: autocast outputs (fp16 or bf16), fp32, int64."""

_KEYS = itertools.count(1)
"""Storage ids of the symbolic tensors (unique across tapes: a block's own tape shares its
input with the tape around it)."""


@dataclass(frozen=True)
class Sym:
    """A tensor of the symbolic forward pass: its storage, element count, element size and
    whether it needs a gradient."""

    key: int
    numel: float
    size: int
    grad: bool


def new(numel: float, size: int, grad: bool) -> Sym:
    """A fresh storage."""
    return Sym(next(_KEYS), numel, size, grad)


class Tape:
    """A symbolic forward pass under autocast that records, once per storage, what autograd
    saves for backward; `device` picks the norm rule (module docstring)."""

    def __init__(self, device: Device = "cuda"):
        self.device: Device = device
        self.norm_fp32 = device == "cuda"
        self.saved: dict[int, float] = {}

    @property
    def total(self) -> float:
        """Bytes of every saved storage."""
        return sum(self.saved.values())

    def keep(self, *syms: Sym) -> None:
        """Mark storages as saved for backward."""
        for sym in syms:
            self.saved[sym.key] = sym.numel * sym.size

    def keep_bytes(self, nbytes: float) -> None:
        """Save a storage no other op shares (weight copies, statistics, indices)."""
        self.keep(new(nbytes, 1, False))

    @staticmethod
    def cast(x: Sym) -> Sym:
        """Autocast's half copy of an fp32 input (a half input is used as it is)."""
        return x if x.size == HALF else new(x.numel, HALF, x.grad)

    def linear(self, x: Sym, fan_in: int, fan_out: int, trains: bool) -> Sym:
        """nn.Linear with bias: saves its input's half copy if the weight trains, the weight's
        half copy if the input needs a gradient."""
        if trains:
            self.keep(self.cast(x))
        if x.grad:
            self.keep_bytes(HALF * fan_in * fan_out)
        return new(x.numel / fan_in * fan_out, HALF, x.grad or trains)

    def lora(self, x: Sym, fan_in: int, fan_out: int, rank: int) -> Sym:
        """peft LoRA on a frozen Linear, base(x) + B(A(x)) s: saves A's input (peft casts it to
        the factors' fp32, autocast back to half: a new storage), A(x), B's half copy, and A's
        when x needs a gradient."""
        base = self.linear(x, fan_in, fan_out, False)
        self.keep(new(x.numel, HALF, x.grad), new(x.numel / fan_in * rank, HALF, True))
        self.keep_bytes(HALF * rank * (fan_in * x.grad + fan_out))
        return new(base.numel, HALF, True)

    def paper_dora(self, x: Sym, fan_in: int, fan_out: int, rank: int) -> Sym:
        """The authors' DoRA (densebench.models.dora): W' = m ||W0|| (W0 + s AB^T) / ||.||
        rebuilt in fp32 every step, then F.linear(x, W'): saves W0 + s AB^T and the numerator
        (fp32, weight-sized), the factors' half copies, x's half copy, and W''s half copy when
        x needs a gradient."""
        weight = fan_in * fan_out
        self.keep_bytes(2 * FLOAT * weight + HALF * rank * (fan_in + fan_out))
        self.keep(self.cast(x))
        if x.grad:
            self.keep_bytes(HALF * weight)
        return new(x.numel / fan_in * fan_out, HALF, True)

    def peft_dora(self, x: Sym, fan_in: int, fan_out: int, rank: int) -> Sym:
        """peft's DoRA (fix `peft_dora`): the LoRA branch, the base output minus its bias (fp32:
        the bias promotes it) and the LoRA output saved for the magnitude's gradient, three
        fp32 per-output vectors; the output is fp32."""
        out = self.lora(x, fan_in, fan_out, rank)
        self.keep(new(out.numel, FLOAT, True), new(out.numel, HALF, True))
        self.keep_bytes(3 * FLOAT * fan_out)
        return new(out.numel, FLOAT, True)

    def adapted(self, x: Sym, fan_in: int, fan_out: int, mode: Mode) -> Sym:
        """An attention Linear as the strategy leaves it (plain, LoRA or DoRA)."""
        if mode.adapter == "lora":
            return self.lora(x, fan_in, fan_out, mode.rank)
        if mode.adapter == "paper_dora":
            return self.paper_dora(x, fan_in, fan_out, mode.rank)
        if mode.adapter == "peft_dora":
            return self.peft_dora(x, fan_in, fan_out, mode.rank)
        return self.linear(x, fan_in, fan_out, mode.trains)

    def conv(self, x: Sym, cin: int, cout: int, k: int, pixels: float, trains: bool) -> Sym:
        """A convolution: saves its input's and its weight's half copies whenever its output
        needs a gradient; `pixels` is its output's count (whole batch)."""
        grad = x.grad or trains
        if grad:
            self.keep(self.cast(x))
            self.keep_bytes(HALF * cin * cout * k * k)
        return new(pixels * cout, HALF, grad)

    def std_conv(self, x: Sym, cin: int, cout: int, k: int, pixels: float) -> Sym:
        """StdConv2d: standardises its trainable fp32 weight (saving w - mean and one fp32
        scale per filter), then convolves."""
        self.keep_bytes(FLOAT * (cin * k * k + 1) * cout)
        return self.conv(x, cin, cout, k, pixels, True)

    def norm(self, x: Sym, rows: float, trains: bool) -> Sym:
        """LayerNorm / GroupNorm: saves its input (the fp32 copy of a half input on CUDA) and
        two fp32 statistics per row (token or group) where a gradient needs them."""
        size = FLOAT if x.size == FLOAT or self.norm_fp32 else HALF
        if not (x.grad or trains):
            return new(x.numel, size, False)
        self.keep(x if x.size == size else new(x.numel, size, x.grad))
        self.keep_bytes(2 * FLOAT * rows)
        return new(x.numel, size, True)

    def batch_norm(self, x: Sym, channels: int) -> Sym:
        """Trainable BatchNorm in training mode (half on both devices): saves its input and four
        fp32 vectors per channel."""
        self.keep(x)
        self.keep_bytes(4 * FLOAT * channels)
        return new(x.numel, x.size, True)

    def relu_(self, x: Sym) -> Sym:
        """In-place ReLU: saves its output, the input's storage."""
        if x.grad:
            self.keep(x)
        return x

    def activation(self, x: Sym) -> Sym:
        """GELU: saves its input."""
        if x.grad:
            self.keep(x)
        return new(x.numel, x.size, x.grad)

    def swiglu(self, x: Sym) -> Sym:
        """silu(x1) * x2 of a packed input: saves the input (both halves, one storage) and
        silu's output."""
        gate = new(x.numel / 2, x.size, x.grad)
        if x.grad:
            self.keep(x, gate)
        return new(x.numel / 2, x.size, x.grad)

    def scale(self, x: Sym, trains: bool) -> Sym:
        """LayerScale (x * gamma, gamma fp32): saves x when gamma trains; an fp32 output."""
        if trains:
            self.keep(x)
        return new(x.numel, FLOAT, x.grad or trains)

    @staticmethod
    def add(a: Sym, b: Sym) -> Sym:
        """Elementwise sum (promoted to the larger dtype); saves nothing."""
        return new(a.numel, max(a.size, b.size), a.grad or b.grad)

    def attention(self, qkv: tuple[Sym, ...], rows: float, dim: int, heads: int) -> Sym:
        """F.scaled_dot_product_attention (flash / memory-efficient): saves q, k, v (autocast's
        half copies of fp32 inputs), its output and an fp32 logsumexp per head and token."""
        grad = any(t.grad for t in qkv)
        if any(t.size == FLOAT for t in qkv):
            qkv = tuple(new(rows * dim, HALF, grad) for _ in range(3))
        out = new(rows * dim, HALF, grad)
        if grad:
            self.keep(*qkv, out)
            self.keep_bytes(FLOAT * rows * heads)
        return out

    def maxpool(self, x: Sym, pixels: float, channels: int) -> Sym:
        """Max pooling: saves its input and the int64 indices of its output."""
        if x.grad:
            self.keep(x)
            self.keep_bytes(LONG * pixels * channels)
        return new(pixels * channels, x.size, x.grad)


def vit_block(tape: Tape, x: Sym, arch: Architecture, mode: Mode) -> Sym:
    """One pre-norm transformer block (timm Block, transformers Dinov2 / ViT layer, MUSK
    layer) on the fp32 residual stream x."""
    d = arch.dim
    rows = x.numel / d
    h = tape.norm(x, rows, mode.trains)
    if arch.fused_qkv:
        out = tape.attention((tape.adapted(h, d, 3 * d, mode),), rows, d, arch.heads)
    else:
        qkv = tuple(tape.adapted(h, d, d, mode) for _ in range(3))
        out = tape.attention(qkv, rows, d, arch.heads)
    if arch.sub_ln:
        out = tape.norm(out, rows, mode.trains)
    out = tape.adapted(out, d, d, mode)
    if arch.layer_scale:
        out = tape.scale(out, mode.trains)
    x = tape.add(x, out)
    return tape.add(x, mlp(tape, tape.norm(x, rows, mode.trains), arch, mode.trains))


def mlp(tape: Tape, x: Sym, arch: Architecture, trains: bool) -> Sym:
    """The block's MLP (never adapted): GELU, SwiGLU, or MUSK's fp32 GELU and sub-LayerNorm."""
    d, hidden = arch.dim, arch.hidden
    if arch.gated:
        act = tape.swiglu(tape.linear(x, d, 2 * hidden, trains))
    elif arch.sub_ln:
        wide = tape.linear(x, d, hidden, trains)
        act = tape.activation(new(wide.numel, FLOAT, wide.grad))  # gelu(h.float())
        act = tape.norm(new(act.numel, HALF, act.grad), x.numel / d, trains)  # .type_as(h)
    else:
        act = tape.activation(tape.linear(x, d, hidden, trains))
    out = tape.linear(act, hidden, d, trains)
    return tape.scale(out, trains) if arch.layer_scale else out


def affine(fn: Callable[[float], float]) -> tuple[float, float]:
    """(slope, intercept) of a function linear in its argument, from two evaluations."""
    one, two = fn(1.0), fn(2.0)
    return two - one, 2 * one - two


@lru_cache(maxsize=1024)
def block_bytes(arch: Architecture, mode: Mode, input_grad: bool, device: Device) -> tuple:
    """(bytes per token, fixed bytes) one block saves, its input needing a gradient or not."""

    def run(rows: float) -> float:
        tape = Tape(device)
        vit_block(tape, new(rows * arch.dim, FLOAT, input_grad), arch, mode)
        return tape.total

    return affine(run)


def embed_bytes(arch: Architecture, images: float, side: int, trains: bool) -> float:
    """The patch embedding's saved bytes (a convolution on the fp32 image: only when it trains)."""
    tape = Tape()
    grid = (side // arch.patch) ** 2
    image = new(images * 3 * side * side, FLOAT, False)
    tape.conv(image, 3, arch.dim, arch.patch, images * grid, trains)
    return tape.total
