"""Activation checkpointing of a segmenter's repeated blocks (`train.grad_checkpointing`).

What `enable_checkpointing` turns on:

- a trainable encoder's blocks (full, LoRA, DoRA; a frozen encoder runs under no_grad and is left
  alone), by family: timm VisionTransformers (families timm and conch) get their `blocks`
  replaced by a `CheckpointedSequential` holding the same block modules (state-dict names
  unchanged); transformers models use the library's own layer checkpointing with
  use_reentrant=False; MUSK its `grad_checkpointing` switch. An encoder without a hook is an
  error, not a silent no-op;
- the Transformer adapter's blocks, the CNN adapter's bottlenecks and the decoder's blocks
  (TokenDecoder and SkipDecoder);
- the UNet baseline's nine DoubleConv stages.

Each block is checkpointed by `densebench.models.block_checkpointing.checkpointed` (its BatchNorm
statistics updated once); the modules call it themselves when their `grad_checkpointing` is on.
"""

from __future__ import annotations

from torch import nn

from densebench.models.block_checkpointing import CheckpointedSequential
from densebench.models.families.musk import MuskEncoder
from densebench.models.segmenter import Segmenter
from densebench.models.unet import UNet

TRANSFORMERS_KWARGS = {"use_reentrant": False, "preserve_rng_state": True}
"""torch.utils.checkpoint arguments given to transformers' layer checkpointing."""


def checkpoint_timm_blocks(encoder: nn.Module) -> str:
    """Checkpoint each block of a timm VisionTransformer (its forward_features runs
    `self.blocks(x)`); the same block modules move into a CheckpointedSequential."""
    if not isinstance(encoder.blocks, CheckpointedSequential):
        encoder.blocks = CheckpointedSequential(*encoder.blocks)
    return "blocks"


def checkpoint_transformers_layers(encoder: nn.Module) -> str:
    """transformers' own checkpointing of each layer (it runs only in training with grad)."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=TRANSFORMERS_KWARGS)
    layers = [
        name
        for name, module in encoder.named_modules()
        if isinstance(module, GradientCheckpointingLayer) and module.gradient_checkpointing
    ]
    if not layers:
        raise ValueError(f"{type(encoder).__name__}: transformers checkpointed no layer")
    return layers[0].rpartition(".")[0]


def checkpoint_encoder(encoder: nn.Module) -> str | None:
    """Turn on checkpointing in an encoder's blocks; the blocks' module path, or None when the
    encoder has no hook."""
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(encoder, MuskEncoder):
        encoder.grad_checkpointing = True
        return "beit3.encoder.layers"
    if isinstance(encoder, VisionTransformer) and type(encoder.blocks) in (
        nn.Sequential,
        CheckpointedSequential,
    ):
        return checkpoint_timm_blocks(encoder)
    if getattr(encoder, "supports_gradient_checkpointing", False) and hasattr(
        encoder, "activation_checkpointing_enable"
    ):
        return checkpoint_transformers_layers(encoder)
    return None


def enable_checkpointing(model: Segmenter, name: str | None = None) -> list[str]:
    """Turn on activation checkpointing in every part of the model that has repeated blocks
    (see the module docstring); return their module paths, for a log line.

    Raises ValueError, naming the model (`name`, else the encoder's class), when the encoder
    trains but has no checkpointing hook.
    """
    if isinstance(model, UNet):
        model.grad_checkpointing = True
        return list(model.CHECKPOINTED_STAGES)
    parts = []
    encoder = model.backbone.encoder
    if model.encoder_trains:
        path = checkpoint_encoder(encoder)
        if path is None:
            label = name or type(encoder).__name__
            raise ValueError(
                f"model {label}: its encoder ({type(encoder).__name__}) trains but has no "
                "activation-checkpointing hook (known: timm VisionTransformer, transformers "
                "models, MUSK); add one in densebench.models.checkpointing or set "
                "train.grad_checkpointing: false"
            )
        parts.append(f"backbone.encoder.{path}")
    if model.token_adapter is not None:
        model.token_adapter.grad_checkpointing = True
        parts.append("token_adapter.blocks")
    if model.cnn is not None:
        model.cnn.grad_checkpointing = True
        parts += ["cnn.stage1", "cnn.stage2", "cnn.stage3"]
    model.decoder.grad_checkpointing = True
    parts.append("decoder.blocks")
    return parts
