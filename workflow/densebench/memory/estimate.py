"""Peak GPU memory of a run's train and predict jobs (`estimate`), cached per spec.

Part of the GPU memory model (densebench.memory): the training step's ledger
(densebench.memory.ledger) plus what it holds besides (weights, gradients, Adam, the batch and
logits, the backward pass's working set, the workspace); prediction's widest point.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from densebench.geometry import tokens
from densebench.memory.architecture import architecture
from densebench.memory.head import head_of
from densebench.memory.ledger import ledger, params
from densebench.memory.tape import FLOAT, HALF, LONG
from densebench.memory.unet import unet_width

Stage = Literal["train", "predict"]

WORKSPACE_BYTES = 1_500_000_000
"""Fixed margin per job: the CUDA context (about 0.5 GB: kernels, cuBLAS / cuDNN handles), the
cuBLAS / cuDNN workspaces (convolution algorithms at the decoder's full resolution), the
optimizer's and the gradient clipping's small temporaries, and the weight copies autocast makes
op by op without keeping them."""

FRAGMENTATION = 0.10
"""Further margin as a share of everything else: the caching allocator's block rounding and
fragmentation (memory reserved but not allocated at the peak)."""

BACKWARD_WORKING_SET = 3
"""Gradient tensors of the largest activation alive at once in the backward pass (an op's
output gradient, its input gradient and one intermediate)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak GPU memory of one job, by part (bytes)."""

    weights: int
    """All model weights at their dtype (fp32 master weights)."""
    gradients: int
    """Gradients of the trainable parameters (fp32)."""
    optimizer: int
    """Adam state: two fp32 moments per trainable parameter."""
    activations: int
    """Encoder (+ adapter) tensors saved for backward, whole batch; with checkpointing the
    blocks' inputs plus one block rebuilt in the backward pass; at prediction the widest point
    of one forward pass."""
    decoder: int
    """Decoder + loss activations at the input side, whole batch, with the logits, the batch and
    the backward pass's working set."""
    workspace: int
    """Stated margin: WORKSPACE_BYTES plus FRAGMENTATION of the rest."""
    checkpointing: bool
    """Whether the estimate is with activation checkpointing (never at prediction)."""
    step: int = 0
    """The optimizer step's temporaries (foreach Adam: one fp32 copy of the trainable
    parameters), alive only after the backward pass has freed activations and decoder."""

    @property
    def total(self) -> int:
        """Peak bytes of the job."""
        transient = max(self.activations + self.decoder, self.step)
        return self.weights + self.gradients + self.optimizer + transient + self.workspace

    @property
    def gb(self) -> float:
        """Peak in GB (1e9 bytes)."""
        return self.total / 1e9


def held_bytes(spec: Any) -> float:
    """Alive through the step but not saved: the half logits, the fp32 batch, int64 labels."""
    pixels = spec.train.batch_size * spec.input_size**2
    return pixels * (HALF * spec.num_classes + 3 * FLOAT + LONG)


def working_set(spec: Any) -> float:
    """The backward pass's gradients alive at once: BACKWARD_WORKING_SET tensors the size of
    the largest full-resolution activation (the loss's fp32 class maps or the last decoder
    block's half input)."""
    pixels = spec.train.batch_size * spec.input_size**2
    if spec.model_record["family"] == "unet":
        widest = HALF * 2 * unet_width(spec.model_record)
    else:
        widest = HALF * int(spec.decoder.block_channels[-2])
    return BACKWARD_WORKING_SET * pixels * max(FLOAT * spec.num_classes, widest)


def _frozen(value: Any) -> Any:
    """A hashable copy of a registry value (lists become tuples, mappings sorted items)."""
    if isinstance(value, Mapping):
        return tuple((k, _frozen(v)) for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def spec_key(spec: Any) -> tuple:
    """Everything of a run spec that the estimate reads (the key of its cache)."""
    record = spec.model_record
    fields = ("family", "arch", "embed_dim", "patch_size", "num_prefix_tokens", "params_m")
    return (
        spec.model,
        tuple(record.get(f) for f in fields),
        _frozen(record.get("kwargs") or {}),
        _frozen(spec.strategy_record),
        tuple(sorted(spec.fixes.items())),
        spec.input_size,
        spec.num_classes,
        spec.train.batch_size,
        spec.decoder.hidden_channels,
        tuple(spec.decoder.block_channels),
    )


CACHE_SIZE = 100_000
"""Entries each cache below holds before it starts afresh."""

_KEYS_OF: dict[int, tuple[weakref.ref, tuple]] = {}
"""spec_key of the specs seen, by id (checked against a weak reference: ids are reused)."""


def _key_of(spec: Any) -> tuple:
    """spec_key(spec), remembered for the spec object (a spec is never modified)."""
    known = _KEYS_OF.get(id(spec))
    if known is not None and known[0]() is spec:
        return known[1]
    if len(_KEYS_OF) >= CACHE_SIZE:
        _KEYS_OF.clear()
    key = spec_key(spec)
    _KEYS_OF[id(spec)] = (weakref.ref(spec), key)
    return key


_ESTIMATES: dict[tuple, MemoryEstimate] = {}
"""Estimates already made, by (spec_key, stage, checkpointing)."""


def estimate(spec: Any, stage: Stage, checkpointing: bool) -> MemoryEstimate:
    """Peak GPU memory of the run's train or predict job (checkpointing: training only).

    Cached by everything of the spec it reads (`spec_key`): the plan asks again for each
    attempt and stage."""
    key = (_key_of(spec), stage, bool(checkpointing) and stage == "train")
    found = _ESTIMATES.get(key)
    if found is None:
        if len(_ESTIMATES) >= CACHE_SIZE:
            _ESTIMATES.clear()
        found = _ESTIMATES[key] = _estimate(spec, stage, key[2])
    return found


def _estimate(spec: Any, stage: Stage, checkpointing: bool) -> MemoryEstimate:
    """`estimate`, uncached."""
    if stage == "predict":
        return predict_estimate(spec)
    saved = ledger(spec, checkpointing)
    total, trainable = params(spec)
    activations = saved.encoder + saved.adapter + saved.recompute
    decoder = max(saved.decoder + held_bytes(spec) + working_set(spec), saved.transient)
    fixed = [FLOAT * total, FLOAT * trainable, 2 * FLOAT * trainable]
    step = FLOAT * trainable
    rest = sum(fixed) + max(activations + decoder, step)
    return MemoryEstimate(
        weights=int(fixed[0]),
        gradients=int(fixed[1]),
        optimizer=int(fixed[2]),
        activations=int(activations),
        decoder=int(decoder),
        workspace=int(WORKSPACE_BYTES + FRAGMENTATION * rest),
        checkpointing=bool(checkpointing),
        step=int(step),
    )


def predict_bytes(spec: Any) -> tuple[float, float]:
    """(encoder, decoder) bytes alive at the widest point of one eval forward pass under
    no_grad (whole batch).

    Encoder, per token: the fp32 residual stream and the norm's fp32 output that its caller
    holds, plus the wider of attention (q, k, v, output, projection, its fp32 LayerScale) and
    MLP (first Linear's output, activation, second Linear's output and its fp32 scale).
    Decoder: the widest block (its upsampled input, both convolutions' outputs, the previous
    block's output) or the logits (half, the caller's fp32 copy, int64 argmax).
    """
    images, side = spec.train.batch_size, spec.input_size
    pixels = images * side * side
    record = spec.model_record
    logits = pixels * ((HALF + FLOAT) * spec.num_classes + LONG)
    if record["family"] == "unet":  # at up4: skip, upsampled, padded, cat, conv, norm outputs
        return 0.0, max(HALF * 8 * unet_width(record) * pixels, logits)
    arch = architecture(record)
    d = arch.dim
    fc1 = 2 * arch.hidden if arch.gated else arch.hidden
    act = 2 * arch.hidden if arch.gated else arch.hidden
    attention = HALF * (3 * d + 2 * d) + FLOAT * d
    wide = HALF * (fc1 + act + d) + FLOAT * d
    encoder = images * tokens(spec) * (2 * FLOAT * d + max(attention, wide))
    head = head_of(spec, arch.dim, arch.patch, arch.prefix)
    widest, grid_side, cin = 0.0, head.grid, head.hidden
    for scale, cout in zip(head.scales, head.channels, strict=True):
        out_side = int(grid_side * scale)
        block = HALF * images * (out_side**2 * (cin + 2 * cout) + grid_side**2 * cin)
        widest, grid_side, cin = max(widest, block), out_side, cout
    return encoder, max(widest, logits)


def predict_estimate(spec: Any) -> MemoryEstimate:
    """Prediction: weights, the widest point of one eval forward pass, the batch, workspace."""
    total, _ = params(spec)
    encoder, decoder = predict_bytes(spec)
    decoder += spec.train.batch_size * spec.input_size**2 * 3 * FLOAT  # the fp32 batch
    rest = FLOAT * total + encoder + decoder
    return MemoryEstimate(
        weights=int(FLOAT * total),
        gradients=0,
        optimizer=0,
        activations=int(encoder),
        decoder=int(decoder),
        workspace=int(WORKSPACE_BYTES + FRAGMENTATION * rest),
        checkpointing=False,
    )


def shared_estimate(specs: Any, checkpointing: bool) -> MemoryEstimate:
    """Peak GPU memory of a shared training job (densebench.train.shared): several
    frozen-encoder runs of one (dataset, model) on one encoder forward per batch.

    The encoder's weights are held once, each run's trainable parts with their gradients and
    Adam state; the runs' steps follow one another on the encoder's tokens (held through the
    step: fp32, whole batch), so the transient is the largest run's plus the tokens."""
    parts = [estimate(spec, "train", checkpointing) for spec in specs]
    first = specs[0]
    arch = architecture(first.model_record)
    encoder = FLOAT * arch.params
    weights = sum(p.weights for p in parts) - (len(parts) - 1) * encoder
    held = FLOAT * first.train.batch_size * tokens(first) * arch.dim
    activations = held + max(p.activations + p.decoder for p in parts)
    gradients = sum(p.gradients for p in parts)
    optimizer = sum(p.optimizer for p in parts)
    step = max(p.step for p in parts)
    rest = weights + gradients + optimizer + max(activations, step)
    return MemoryEstimate(
        weights=int(weights),
        gradients=int(gradients),
        optimizer=int(optimizer),
        activations=int(activations),
        decoder=0,
        workspace=int(WORKSPACE_BYTES + FRAGMENTATION * rest),
        checkpointing=bool(checkpointing),
        step=int(step),
    )


def needs_checkpointing(spec: Any, memory_gb: float) -> bool:
    """Whether the run's training needs activation checkpointing on a GPU of `memory_gb` GB:
    its estimate without checkpointing exceeds it."""
    return estimate(spec, "train", False).gb > memory_gb
