"""Activation checkpointing of one block: `checkpointed(module, *args)` and
`CheckpointedSequential` (densebench.models.checkpointing turns it on across a segmenter).

A checkpointed block keeps only its inputs in the forward pass and recomputes its activations in
the backward pass: torch.utils.checkpoint, non-reentrant (so a block whose input needs no
gradient, as behind a frozen patch embedding under LoRA, still gets its parameters' gradients),
with the RNG state restored so that drop-path and dropout recompute the same masks. It is active
only in training mode with gradients enabled: in eval mode or under no_grad every block runs its
plain forward, so predictions do not change.

BatchNorm (decoder and UNet blocks): recomputing a block in training mode would update its
running statistics a second time, so the recomputation restores them afterwards; the forward
pass updates them exactly once, as without checkpointing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def running_stats_of(module: nn.Module) -> list[torch.Tensor]:
    """The running-statistics buffers of every BatchNorm in a module."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    stats = [(m.running_mean, m.running_var, m.num_batches_tracked) for m in norms]
    return [buffer for triple in stats for buffer in triple if buffer is not None]


@contextmanager
def running_stats_kept(buffers: list[torch.Tensor]) -> Iterator[None]:
    """Restore the given BatchNorm buffers on exit (a recomputation must not update them)."""
    saved = [buffer.clone() for buffer in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved, strict=True):
                buffer.copy_(value)


def checkpointed(module: nn.Module, *args: Any) -> Any:
    """`module(*args)`; in training mode with gradients enabled, its activations are not kept
    but recomputed in the backward pass (same RNG state, BatchNorm statistics updated once)."""
    if not (module.training and torch.is_grad_enabled()):
        return module(*args)
    buffers = running_stats_of(module)
    if not buffers or torch.compiler.is_compiling():  # compiled: buffers are updated once
        return checkpoint(module, *args, use_reentrant=False, preserve_rng_state=True)

    def contexts() -> tuple[Any, Any]:
        return nullcontext(), running_stats_kept(buffers)

    return checkpoint(
        module, *args, use_reentrant=False, preserve_rng_state=True, context_fn=contexts
    )


class CheckpointedSequential(nn.Sequential):
    """An nn.Sequential of single-input blocks, each run through `checkpointed`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The blocks in order."""
        for block in self:
            x = checkpointed(block, x)
        return x
