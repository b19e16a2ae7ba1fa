"""Adaptation strategies applied to a backbone (protocol.md §2.2).

frozen: no encoder parameter trains. full: every encoder parameter trains. lora: peft adapters
on the attention's fused qkv (or q/k/v) and output projection only (the registry's
`adapter_targets` pattern), with the paper's scale alpha (peft `lora_alpha = r * alpha`, since
peft scales by lora_alpha / r). dora: the authors' scalar-magnitude variant (densebench.models.
dora) or, with the `peft_dora` fix, peft's `use_dora`. cnn_adapter and transformer_adapter keep
the encoder frozen and add their own trainable modules.

The authors inject LoRA/DoRA by type into timm `Attention` modules only, so for encoders built
by transformers or MUSK's own code nothing is adapted and "LoRA" is frozen; `protocol: paper`
reproduces that (PAPER_ADAPTED_FAMILIES), the `lora_all_families` fix adapts every family.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

FORBIDDEN_TARGETS = re.compile(r"(^|\.)patch_embed\.proj$")
"""LoRA must never adapt the patch embedding, whose name also ends in `proj`."""
PAPER_ADAPTED_FAMILIES = frozenset({"timm", "conch"})
"""Families whose attention the authors' type-based LoRA/DoRA injection reaches."""


def freeze(module: nn.Module) -> None:
    """Stop gradients for every parameter of a module."""
    for param in module.parameters():
        param.requires_grad_(False)


def inject_lora(
    encoder: nn.Module, strategy: dict[str, Any], targets: str, use_dora: bool
) -> list[str]:
    """Add peft LoRA/DoRA adapters in place; return the adapted module names (checked)."""
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
    adapted = [n for n, m in encoder.named_modules() if isinstance(m, LoraLayer)]
    return adapted


def check_adapted(adapted: list[str], targets: str) -> None:
    """Assert adapters landed on the target pattern only, and never on the patch embedding."""
    if not adapted:
        raise ValueError(f"LoRA pattern {targets!r} matched no module of the encoder")
    wrong = [n for n in adapted if FORBIDDEN_TARGETS.search(n) or not re.fullmatch(targets, n)]
    if wrong:
        raise ValueError(f"LoRA adapted modules outside {targets!r}: {wrong}")


def apply_encoder_strategy(
    encoder: nn.Module, strategy: dict[str, Any], record: dict[str, Any], fixes: dict[str, bool]
) -> list[str]:
    """Freeze, unfreeze or adapt the encoder per the strategy; return the adapted modules."""
    kind = strategy["encoder"]
    if kind == "full":
        return []
    if kind == "frozen" or (
        kind in ("lora", "dora")
        and record["family"] not in PAPER_ADAPTED_FAMILIES
        and not fixes["lora_all_families"]
    ):
        freeze(encoder)
        return []
    if kind not in ("lora", "dora"):
        raise ValueError(f"unknown encoder treatment {kind!r}; valid: frozen, full, lora, dora")
    targets = record["adapter_targets"]
    if kind == "dora" and not fixes["peft_dora"]:
        from densebench.models.dora import inject_paper_dora

        scale = float(strategy["alpha"])
        adapted = inject_paper_dora(encoder, targets, int(strategy["rank"]), scale)
    else:
        adapted = inject_lora(encoder, strategy, targets, use_dora=kind == "dora")
    for name, param in encoder.named_parameters():
        param.requires_grad_("lora_" in name)
    check_adapted(adapted, targets)
    return adapted
