"""Torch runtime shared by training and prediction: device, determinism, mixed precision.

Training (its validation) and prediction both count per-image confusion matrices with
`densebench.evaluate.predict.confusion_matrices`.
"""

from __future__ import annotations

import contextlib

import torch


def configure_torch(
    seed: int, threads: int, deterministic_algorithms: bool = False
) -> torch.device:
    """Seed torch, cap threads and set the authors' cudnn flags (their train.py:
    `cudnn.deterministic = True`, `cudnn.benchmark = False`); return the device.

    `deterministic_algorithms` (config `train.deterministic_algorithms`, off by default) adds
    `torch.use_deterministic_algorithms(True)`: an operation without a deterministic CUDA kernel
    then raises instead of running, and deterministic variants are picked where they exist
    (slower scatter / index kernels, CUBLAS_WORKSPACE_CONFIG set for cuBLAS). It is strict, not
    warn-only: a warning would let the nondeterministic kernel run anyway.
    """
    import os

    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    if deterministic_algorithms:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic_algorithms)
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
