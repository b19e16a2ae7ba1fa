"""Which modules of a built encoder draw random numbers in training mode.

The torch-side twin of densebench.sharing.random_forward: a shared training job checks its
encoder with it before sharing one forward pass among runs (a dropout or drop-path layer with a
rate above zero would make one shared draw where separate runs each draw their own).
"""

from __future__ import annotations

from torch import nn

RATE_ATTRIBUTES = ("p", "drop_prob", "dropout_prob", "dropout", "attention_dropout", "drop_rate")
"""Attributes holding a module's dropout / drop-path rate (torch Dropout's `p`, timm DropPath's
`drop_prob`, transformers attention's `dropout_prob` / `dropout` / `attention_dropout`)."""


def random_modules(module: nn.Module) -> list[str]:
    """Names of the submodules with a dropout or drop-path rate above zero (random in
    training mode)."""
    found = []
    for name, sub in module.named_modules():
        kind = type(sub).__name__.lower()
        if not ("drop" in kind or "attention" in kind):
            continue
        for attribute in RATE_ATTRIBUTES:
            value = getattr(sub, attribute, None)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                found.append(f"{name or type(sub).__name__} ({attribute} = {value:g})")
                break
    return found
