"""The architecture a model record describes, and how the run's strategy trains its encoder.

Part of the GPU memory model (densebench.memory): what the symbolic forward pass
(densebench.memory.tape) reads of a record and a strategy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from densebench.lora_whitelist import paper_adapts

TIMM_DEFAULTS: dict[str, dict[str, Any]] = {
    "vit_giant_patch14_dinov2": {
        "mlp_ratio": 2.66667 * 2,
        "mlp_layer": "SwiGLUPacked",
        "init_values": 1e-5,
    },
    "vit_giant_patch14_reg4_dinov2": {
        "mlp_ratio": 2.66667 * 2,
        "mlp_layer": "SwiGLUPacked",
        "init_values": 1e-5,
    },
    "vit_large_patch14_reg4_dinov2": {"init_values": 1e-5},
    "vit_small_patch14_reg4_dinov2": {"init_values": 1e-5},
}
"""timm architecture defaults that differ from VisionTransformer's (MLP ratio 4, GELU Mlp, no
LayerScale) and that a record may leave out of its kwargs (hoptimus_0, kaiko-vitl14)."""


@dataclass(frozen=True)
class Architecture:
    """What the memory model reads of a ViT-like model record."""

    depth: int
    dim: int
    heads: int
    hidden: int
    """MLP width after the activation (the second Linear's input)."""
    gated: bool
    """SwiGLU MLP: the first Linear gives 2 x hidden, silu(x1) * x2."""
    layer_scale: bool
    fused_qkv: bool
    """One qkv Linear (timm) rather than q, k and v Linears (transformers, MUSK)."""
    sub_ln: bool
    """MUSK's sub-LayerNorms (after attention, after the fp32 GELU)."""
    patch: int
    prefix: int
    params: float = 0.0
    """All the model's weights (the record's `params_m`, else `path_params`)."""

    @property
    def linears(self) -> tuple[tuple[int, int], ...]:
        """(in, out) of the attention Linears that LoRA/DoRA adapt in one block."""
        d = self.dim
        return ((d, 3 * d), (d, d)) if self.fused_qkv else ((d, d),) * 4

    @property
    def block_params(self) -> int:
        """Parameters of one block (attention, MLP, norms, LayerScale)."""
        d, h = self.dim, self.hidden
        fc1 = 2 * h if self.gated else h
        mlp = d * fc1 + fc1 + h * d + d + (2 * h if self.sub_ln else 0)
        attention = 4 * d * d + 4 * d + (2 * d if self.sub_ln else 0)
        return attention + mlp + 4 * d + (2 * d if self.layer_scale else 0)

    @property
    def path_params(self) -> int:
        """Parameters on the image path (blocks, patch embedding, prefix tokens, final norm):
        those full fine-tuning gives a gradient (position tables left out)."""
        d = self.dim
        return self.depth * self.block_params + 3 * self.patch**2 * d + (self.prefix + 3) * d


def _kwargs(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's kwargs over its timm architecture's defaults."""
    base = TIMM_DEFAULTS.get(str(record.get("arch")), {}) if record["family"] == "timm" else {}
    return {**base, **(record.get("kwargs") or {})}


def _depth(record: Mapping[str, Any], kwargs: Mapping[str, Any], dim: int) -> int:
    """Blocks: the kwargs' depth / num_hidden_layers, else params / (12 d^2) (a ViT block)."""
    for key in ("depth", "num_hidden_layers"):
        if kwargs.get(key) is not None:
            return int(kwargs[key])
    return max(1, round(float(record["params_m"]) * 1e6 / (12 * dim * dim)))


def _hidden(family: str, kwargs: Mapping[str, Any], dim: int, gated: bool) -> int:
    """MLP width after the activation, as each family's module computes it."""
    for key in ("intermediate_size", "ffn_dim"):
        if kwargs.get(key) is not None:
            return int(kwargs[key])
    width = int(dim * float(kwargs.get("mlp_ratio", 4.0)))
    if not gated:
        return width
    if family == "transformers":  # Dinov2SwiGLUFFN: 2/3 of the width, rounded up to 8
        return (int(width * 2 / 3) + 7) // 8 * 8
    return width // 2  # timm SwiGLUPacked: fc1 gives `width`, split in two halves


def architecture(record: Mapping[str, Any]) -> Architecture:
    """The architecture of a ViT-like model record (families timm, conch, transformers, musk)."""
    kwargs = record.get("kwargs") or {}
    key = tuple((k, v) for k, v in sorted(kwargs.items()) if isinstance(v, str | int | float))
    fields = ("family", "arch", "embed_dim", "patch_size", "num_prefix_tokens", "params_m")
    return _architecture(tuple(record.get(f) for f in fields), key)


@lru_cache(maxsize=1024)
def _architecture(fields: tuple, kwargs: tuple) -> Architecture:
    """`architecture` of the record fields (family, arch, embed_dim, patch_size,
    num_prefix_tokens, params_m) and the record's scalar kwargs."""
    family, arch_name, dim, patch, prefix, params_m = fields
    record = {"family": family, "arch": arch_name, "kwargs": dict(kwargs), "params_m": params_m}
    kwargs = _kwargs(record)
    dim = int(dim)
    if family == "transformers":
        gated = bool(kwargs.get("use_swiglu_ffn", False))
        layer_scale = arch_name != "ViTModel"
    else:
        gated = kwargs.get("mlp_layer") == "SwiGLUPacked"
        layer_scale = kwargs.get("init_values") is not None and family != "musk"
    heads = kwargs.get("num_heads", kwargs.get("num_attention_heads"))
    arch = Architecture(
        depth=_depth(record, kwargs, dim),
        dim=dim,
        heads=int(heads) if heads is not None else max(1, dim // 64),
        hidden=_hidden(family, kwargs, dim, gated),
        gated=gated,
        layer_scale=layer_scale,
        fused_qkv=family in ("timm", "conch"),
        sub_ln=family == "musk",
        patch=int(patch),
        prefix=int(1 if prefix is None else prefix),
    )
    return replace(arch, params=float(params_m) * 1e6 if params_m else float(arch.path_params))


def adapter_architecture(dim: int) -> Architecture:
    """The Transformer adapter's blocks: timm Block, MLP ratio 4, LayerScale, d / 64 heads
    (densebench.models.adapters.TransformerAdapter)."""
    heads = max(1, dim // 64)
    return Architecture(0, dim, heads, 4 * dim, False, True, True, False, 1, 0)


def adapts(spec: Any) -> bool:
    """Whether a LoRA/DoRA strategy puts adapters on the run's model: always with the
    `lora_all_families` fix, else where the authors' code does (their whitelist, timm / CONCH
    attention; densebench.lora_whitelist.paper_adapts)."""
    if spec.strategy_record["encoder"] not in ("lora", "dora"):
        return False
    if spec.fixes.get("lora_all_families"):
        return True
    return paper_adapts(spec.model_record, spec.model)


@dataclass(frozen=True)
class Mode:
    """How the encoder's blocks train: all their weights (`trains`), or adapters on their
    attention Linears (`adapter`: lora, paper_dora, peft_dora; `rank`), or neither (frozen)."""

    trains: bool
    adapter: str | None = None
    rank: int = 0

    @property
    def grad(self) -> bool:
        """Whether the encoder runs with gradients (else under no_grad)."""
        return self.trains or self.adapter is not None


def encoder_mode(spec: Any) -> Mode:
    """The encoder blocks' mode under the run's strategy (and the LoRA whitelist)."""
    encoder = spec.strategy_record["encoder"]
    if encoder == "full":
        return Mode(True)
    if not adapts(spec):
        return Mode(False)
    rank = int(spec.strategy_record["rank"])
    if encoder == "lora":
        return Mode(False, "lora", rank)
    return Mode(False, "peft_dora" if spec.fixes.get("peft_dora") else "paper_dora", rank)
