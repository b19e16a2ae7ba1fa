"""Learning-rate schedule: linear warmup then cosine annealing, stepped once per epoch.

Under `paper` the cosine period is the authors' fixed T_max (100) whatever the number of epochs
(protocol.md §3): the LR reaches 0 at epoch 100 and rises again. The `cosine_period_epochs` fix
uses T_max = epochs.
"""

from __future__ import annotations

import math


def lr_at(epoch: int, base_lr: float, warmup: int, t_max: int, eta_min: float = 0.0) -> float:
    """LR of epoch `epoch` (0-based): lr(0)=0, linear warmup, then cosine with period t_max."""
    if epoch < warmup:
        return base_lr * epoch / warmup
    phase = (epoch - warmup) / max(1, t_max - warmup)
    return eta_min + 0.5 * (base_lr - eta_min) * (1.0 + math.cos(math.pi * phase))


def cosine_period(epochs: int, cosine_t_max: int, period_is_epochs: bool) -> int:
    """T_max: the number of epochs with the `cosine_period_epochs` fix, else the paper's value
    (the recipe's `cosine_t_max`)."""
    return int(epochs) if period_is_epochs else int(cosine_t_max)
