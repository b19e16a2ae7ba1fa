"""Adaptation strategies applied to a backbone (protocol.md §2.2).

frozen: no encoder parameter trains. lora / dora: peft adapters on the attention's fused qkv and
output projection only (the registry's `adapter_targets` pattern), with the paper's scale
alpha (peft `lora_alpha = r * alpha`, since peft scales by lora_alpha / r). cnn_adapter and
transformer_adapter keep the encoder frozen and add their own trainable modules.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

FORBIDDEN_TARGETS = re.compile(r"(^|\.)patch_embed\.proj$")
"""LoRA must never adapt the patch embedding, whose name also ends in `proj`."""


def freeze(module: nn.Module) -> None:
    """Stop gradients for every parameter of a module."""
    for param in module.parameters():
        param.requires_grad_(False)


def inject_lora(
    encoder: nn.Module, strategy: dict[str, Any], targets: str, use_dora: bool
) -> list[str]:
    """Add LoRA/DoRA adapters in place; return the adapted module names (checked)."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer

    rank = int(strategy["rank"])
    config = LoraConfig(
        r=rank,
        lora_alpha=rank * float(strategy["alpha"]),
        target_modules=targets,
        lora_dropout=0.0,
        bias="none",
        use_dora=use_dora,
    )
    inject_adapter_in_model(config, encoder)
    for name, param in encoder.named_parameters():
        param.requires_grad_("lora_" in name)
    adapted = [n for n, m in encoder.named_modules() if isinstance(m, LoraLayer)]
    check_adapted(adapted, targets)
    return adapted


def check_adapted(adapted: list[str], targets: str) -> None:
    """Assert adapters landed on the target pattern only, and never on the patch embedding."""
    if not adapted:
        raise ValueError(f"LoRA pattern {targets!r} matched no module of the encoder")
    wrong = [n for n in adapted if FORBIDDEN_TARGETS.search(n) or not re.fullmatch(targets, n)]
    if wrong:
        raise ValueError(f"LoRA adapted modules outside {targets!r}: {wrong}")


def apply_encoder_strategy(encoder: nn.Module, strategy: dict[str, Any], targets: str) -> list[str]:
    """Freeze the encoder or give it adapters, per the strategy record's `encoder` key."""
    kind = strategy["encoder"]
    if kind == "frozen":
        freeze(encoder)
        return []
    if kind in ("lora", "dora"):
        return inject_lora(encoder, strategy, targets, use_dora=kind == "dora")
    raise ValueError(f"unknown encoder treatment {kind!r}; valid: frozen, lora, dora")
