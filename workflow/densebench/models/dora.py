"""The authors' "DoRA" (protocol.md §2.2), kept as our own small module for `protocol: paper`.

Per adapted Linear: one *scalar* magnitude m (init 1) and the *whole-matrix* Frobenius norm,
not detached:  W' = m * ||W0||_F * (W0 + s (A B)^T) / ||W0 + s (A B)^T||_F,  y = W' x + b,
with the LoRA factors A (in x r, Kaiming-uniform a=sqrt(5)) and B (r x out, zeros) and the
paper's scale s = alpha. This is not the DoRA of its paper nor peft's (a per-output magnitude
vector and row-wise, detached norms); the `peft_dora` fix switches to peft's.

The authors initialise A as an (in, r) tensor, so torch's fan_in is r and A ~ U(+-1/sqrt(r));
peft (and the `standard_lora_init` fix) draw it as an (r, in) tensor, U(+-1/sqrt(in)).
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn


def lora_down_init(
    in_features: int,
    rank: int,
    standard: bool = False,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """A fresh LoRA down factor A of shape (in, r), Kaiming-uniform with a = sqrt(5).

    Paper: drawn as the authors' (in, r) `lora_a` ([F] models/lora.py LoRALinear.reset_parameters
    and models/dora.py DoraLinear.reset_parameters: `kaiming_uniform_(self.lora_a, a=sqrt(5))`);
    torch's fan_in of a 2-D tensor is size(1) = r, so the bound is sqrt(6 / ((1 + 5) r)) =
    1/sqrt(r). Standard: drawn as an (r, in) weight like peft's lora_A (fan_in = in, 1/sqrt(in)).
    """
    factory = {"device": device, "dtype": dtype}
    if standard:
        weight = torch.empty(rank, in_features, **factory)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        return weight.T.contiguous()
    factor = torch.empty(in_features, rank, **factory)
    nn.init.kaiming_uniform_(factor, a=math.sqrt(5))
    return factor


class PaperDoRALinear(nn.Module):
    """A frozen Linear with the authors' scalar-magnitude DoRA update."""

    def __init__(self, base: nn.Linear, rank: int, scale: float, standard_init: bool = False):
        super().__init__()
        self.base = base
        for param in base.parameters():
            param.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(lora_down_init(base.in_features, rank, standard_init, **factory))
        self.lora_B = nn.Parameter(torch.zeros(rank, base.out_features, **factory))
        self.lora_magnitude = nn.Parameter(torch.ones((), **factory))
        self.scale = scale

    def merged_weight(self) -> torch.Tensor:
        """W' = m ||W0||_F (W0 + s (A B)^T) / ||W0 + s (A B)^T||_F."""
        w0 = self.base.weight
        updated = w0 + self.scale * (self.lora_A @ self.lora_B).T
        return self.lora_magnitude * torch.linalg.norm(w0) * updated / torch.linalg.norm(updated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = W' x + b."""
        return F.linear(x, self.merged_weight(), self.base.bias)


def inject_paper_dora(
    encoder: nn.Module, targets: str, rank: int, scale: float, standard_init: bool = False
) -> list[str]:
    """Replace every Linear whose name fully matches `targets`; return the replaced names."""
    names = [
        n
        for n, m in encoder.named_modules()
        if isinstance(m, nn.Linear) and re.fullmatch(targets, n)
    ]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name) if parent_name else encoder
        dora = PaperDoRALinear(getattr(parent, child), rank, scale, standard_init)
        setattr(parent, child, dora)
    return names
