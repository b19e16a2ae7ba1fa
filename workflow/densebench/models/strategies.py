"""Adaptation strategies applied to a backbone (protocol.md §2.2).

frozen: no encoder parameter trains. full: every encoder parameter trains. lora: peft adapters
on the attention's fused qkv (or q/k/v) and output projection only (the registry's
`adapter_targets` pattern), with the paper's scale alpha (peft `lora_alpha = r * alpha`, since
peft scales by lora_alpha / r). dora: the authors' scalar-magnitude variant (densebench.models.
dora) or, with the `peft_dora` fix, peft's `use_dora`. cnn_adapter and transformer_adapter keep
the encoder frozen and add their own trainable modules.

Which models the authors adapt ([F] models/lora.py equip_model_with_lora, models/dora.py
equip_model_with_dora): only if the model's name is in their whitelist (`if pfm_name in [...]`,
replacing timm `Attention` modules, or `elif pfm_name == 'conch_v1_5'`, replacing CONCH-v1.5's
own attention); the whitelist omits PathOrchestra. Encoders built by transformers or MUSK's own
code are whitelisted but hold no timm `Attention`, so nothing is replaced either. Then
everything but lora_a/lora_b (and DoRA's m) is frozen, so such "LoRA" runs are frozen runs.
`protocol: paper` reproduces both conditions (densebench.lora_whitelist.paper_adapts); the
`lora_all_families` fix adapts
every model through its `adapter_targets`.

Init: peft draws lora_A as an (r, in) weight (bound 1/sqrt(in)); under `paper` it is redrawn as
the authors' (in, r) `lora_a` (bound 1/sqrt(r), densebench.models.dora.lora_down_init) unless
the `standard_lora_init` fix is on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from densebench.lora_whitelist import paper_adapts
from densebench.models.dora import inject_paper_dora, lora_down_init

FORBIDDEN_TARGETS = re.compile(r"(^|\.)patch_embed\.proj$")
"""LoRA must never adapt the patch embedding, whose name also ends in `proj`."""


def paper_lora_init(encoder: nn.Module) -> None:
    """Redraw every peft lora_A as the authors' (in, r) `lora_a` (bound 1/sqrt(r)).

    One draw per adapted layer in module order, so it is deterministic under torch.manual_seed;
    lora_B stays zero, so the update (and peft DoRA's initial magnitude) is unchanged.
    """
    from peft.tuners.lora import LoraLayer

    for module in encoder.modules():
        if not isinstance(module, LoraLayer):
            continue
        for down in module.lora_A.values():
            weight = down.weight  # (r, in)
            rank, fan = weight.shape
            fresh = lora_down_init(fan, rank, device=weight.device, dtype=weight.dtype)
            with torch.no_grad():
                weight.copy_(fresh.T)


def freeze(module: nn.Module) -> None:
    """Stop gradients for every parameter of a module."""
    for param in module.parameters():
        param.requires_grad_(False)


def inject_lora(
    encoder: nn.Module,
    strategy: Mapping[str, Any],
    targets: str,
    use_dora: bool,
    standard_init: bool = True,
) -> list[str]:
    """Add peft LoRA/DoRA adapters in place (peft's init, or the authors' when
    `standard_init` is off); return the adapted module names."""
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
    if not standard_init:
        paper_lora_init(encoder)
    return [n for n, m in encoder.named_modules() if isinstance(m, LoraLayer)]


def check_adapted(adapted: list[str], targets: str) -> None:
    """Assert adapters landed on the target pattern only, and never on the patch embedding."""
    if not adapted:
        raise ValueError(f"LoRA pattern {targets!r} matched no module of the encoder")
    wrong = [n for n in adapted if FORBIDDEN_TARGETS.search(n) or not re.fullmatch(targets, n)]
    if wrong:
        raise ValueError(f"LoRA adapted modules outside {targets!r}: {wrong}")


def apply_encoder_strategy(
    encoder: nn.Module,
    strategy: Mapping[str, Any],
    record: Mapping[str, Any],
    fixes: Mapping[str, bool],
    name: str | None = None,
) -> list[str]:
    """Freeze, unfreeze or adapt the encoder of model `name` per the strategy; return the
    adapted modules."""
    kind = strategy["encoder"]
    if kind == "full":
        return []
    if kind == "frozen" or (
        kind in ("lora", "dora")
        and not paper_adapts(record, name)
        and not fixes["lora_all_families"]
    ):
        freeze(encoder)
        return []
    if kind not in ("lora", "dora"):
        raise ValueError(f"unknown encoder treatment {kind!r}; valid: frozen, full, lora, dora")
    targets = record["adapter_targets"]
    standard_init = fixes.get("standard_lora_init", False)  # absent: the paper's init
    if kind == "dora" and not fixes["peft_dora"]:
        rank, scale = int(strategy["rank"]), float(strategy["alpha"])
        adapted = inject_paper_dora(encoder, targets, rank, scale, standard_init)
    else:
        adapted = inject_lora(encoder, strategy, targets, kind == "dora", standard_init)
    for name, param in encoder.named_parameters():
        param.requires_grad_("lora_" in name)
    check_adapted(adapted, targets)
    return adapted
