"""Torch runtime shared by training and prediction: device, determinism, mixed precision.

Per-image confusion counts live in `densebench.evaluate.confusion`.
"""

from __future__ import annotations

import contextlib

import torch


def configure_torch(seed: int, threads: int) -> torch.device:
    """Seed torch, make kernels deterministic where possible, cap threads; return the device."""
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_dtype(device: torch.device, bf16_fix: bool) -> torch.dtype | None:
    """Autocast dtype: none on CPU (full precision); fp16 on GPU as the paper, or bf16 (fix)."""
    if device.type != "cuda":
        return None
    if bf16_fix and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed-precision context, a no-op without a dtype."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
