"""The ledger of one training step: the bytes its forward pass saves for backward, by part, and
the model's parameters (densebench.memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from densebench.geometry import tokens
from densebench.memory.architecture import Architecture, Mode, architecture, encoder_mode
from densebench.memory.head import decoder_params, head_bytes, head_of, loss_bytes
from densebench.memory.tape import FLOAT, Device, Tape, block_bytes, embed_bytes
from densebench.memory.unet import unet_params, unet_tape, unet_width


@dataclass(frozen=True)
class Ledger:
    """Bytes saved for backward by one training step's forward pass, by part (whole batch)."""

    first_block: float
    """The encoder's first block (under LoRA its input needs no gradient); with checkpointing
    its kept input."""
    block: float
    """Each later encoder block; with checkpointing its kept input."""
    depth: int
    encoder_rest: float
    """Patch embedding and final norm."""
    adapter: float
    """Transformer adapter (blocks, norm) or the CNN adapter's branch."""
    decoder: float
    """Decoder, head and loss."""
    recompute: float
    """With checkpointing: the largest checkpointed block's saved bytes (rebuilt in the
    backward pass, one block at a time)."""
    transient: float
    """Bytes saved and freed before the decoder runs (the CNN adapter's third stage)."""

    @property
    def encoder(self) -> float:
        """Encoder bytes saved at the end of the forward pass."""
        return self.first_block + max(self.depth - 1, 0) * self.block + self.encoder_rest

    @property
    def saved(self) -> float:
        """All bytes saved at the end of the forward pass."""
        return self.encoder + self.adapter + self.decoder


def ledger(spec: Any, checkpointing: bool = False, device: Device = "cuda") -> Ledger:
    """Bytes saved for backward by one training step of the run at its batch size."""
    images = float(spec.train.batch_size)
    record = spec.model_record
    if record["family"] == "unet":
        tape = Tape(device)
        peak = unet_tape(
            tape, images, spec.input_size, unet_width(record), spec.num_classes, checkpointing
        )
        saved = tape.total + loss_bytes(images, spec.num_classes, spec.input_size)
        return Ledger(0.0, 0.0, 0, 0.0, 0.0, saved, peak, 0.0)
    arch = architecture(record)
    mode = encoder_mode(spec)
    rows = images * tokens(spec)
    first = rest = encoder_rest = peak = 0.0
    if mode.grad:
        slope, fixed = block_bytes(arch, mode, mode.trains, device)
        first = slope * rows + fixed
        slope, fixed = block_bytes(arch, mode, True, device)
        rest = slope * rows + fixed
        final_norm = FLOAT * rows * (arch.dim + 2)
        encoder_rest = embed_bytes(arch, images, spec.input_size, mode.trains) + final_norm
        if checkpointing:
            peak = max(first, rest)
            first = rest = FLOAT * rows * arch.dim
    head = head_of(spec, arch.dim, arch.patch, arch.prefix)
    adapter, decoder, head_peak, transient = head_bytes(
        head, images, mode.grad, checkpointing, device
    )
    return Ledger(
        first, rest, arch.depth, encoder_rest, adapter, decoder, max(peak, head_peak), transient
    )


def lora_params(arch: Architecture, mode: Mode) -> int:
    """LoRA/DoRA parameters of the encoder (factors, magnitudes)."""
    if mode.adapter is None:
        return 0
    extra = {"lora": lambda out: 0, "paper_dora": lambda out: 1, "peft_dora": lambda out: out}
    per_block = sum(
        mode.rank * (fan_in + fan_out) + extra[mode.adapter](fan_out)
        for fan_in, fan_out in arch.linears
    )
    return arch.depth * per_block


def params(spec: Any) -> tuple[float, float]:
    """(all parameters, trainable parameters that get a gradient) of the run's model."""
    record = spec.model_record
    if record["family"] == "unet":
        total = float(unet_params(unet_width(record), spec.num_classes))
        return total, total
    arch = architecture(record)
    mode = encoder_mode(spec)
    head = decoder_params(head_of(spec, arch.dim, arch.patch, arch.prefix))
    lora = lora_params(arch, mode)
    trainable = head + lora + (arch.path_params if mode.trains else 0)
    return arch.params + head + lora, float(trainable)
