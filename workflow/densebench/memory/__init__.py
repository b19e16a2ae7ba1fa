"""GPU memory of a run's train and predict jobs, from its run spec (pure Python, no torch).

The plan asks this model, for every job, which GPU class holds it and whether training needs
activation checkpointing (densebench.gpu_plan), so a call must be cheap: it reads the
spec, and the per-layer accounting below is cached per architecture, strategy and input side.

What a training step holds at its peak (`MemoryEstimate`):

* weights: every model weight in fp32 (autocast keeps fp32 master weights): the record's
  `params_m` (all weights loaded, MUSK's unused language experts included), the decoder, the
  adapters and the LoRA/DoRA factors;
* gradients (fp32) and Adam's two fp32 moments of the trainable parameters on the image path
  (MUSK's language experts get no gradient, so no state either); Adam's foreach step allocates
  one more fp32 copy of them (`step`) after the backward pass has freed the activations, so the
  peak takes the larger of the two phases;
* activations and decoder: the tensors autograd saves for backward, counted storage by storage
  by a symbolic forward pass (`Tape`) that follows the real modules op by op (densebench.models
  and the timm / transformers / peft modules they build): which op saves which input or output,
  in which dtype under autocast, and only where a gradient needs it. A frozen Linear whose
  input needs a gradient saves its weight's half-precision copy, a trainable one its input's;
  Linear, convolution and attention outputs are 2 bytes under autocast fp16 (paper) and bf16
  (fix) alike, the residual stream and LayerNorm outputs fp32. Added: the logits, the batch
  and the backward pass's working set (gradients of the largest activations);
* workspace: a stated margin (WORKSPACE_BYTES, FRAGMENTATION).

Strategies. A frozen encoder runs under torch.no_grad and saves nothing, also under the CNN and
Transformer adapters (whose own modules train). LoRA/DoRA encoders save in every block, the
first block less (its input, behind the frozen patch embedding, needs no gradient). Under
`protocol: paper`, LoRA/DoRA leave models outside the authors' whitelist frozen (`adapts`: the
rule of densebench.lora_whitelist.paper_adapts, which the strategies apply too).
Checkpointing (densebench.models.checkpointing: encoder blocks, Transformer-adapter blocks,
decoder blocks, the UNet's stages) keeps each checkpointed block's inputs and rebuilds one block
at a time in the backward pass, so the largest block's saved tensors are added once
(`Ledger.recompute`).

Prediction runs in eval mode under no_grad at the training batch size (sliding-window chunks are
that size): the weights, the tensors alive at once at the widest point of one forward pass
(`predict_bytes`), the batch and the workspace.

Attention, CPU and GPU. All families call F.scaled_dot_product_attention. On the GPU its flash
and memory-efficient kernels save q, k, v, the output and an fp32 logsumexp per head and token,
O(T), never a T x T matrix, and write the output token-major, so the transpose-reshape after it
is a view. On the CPU, for the bf16 inputs of the validation test, PyTorch picks its CPU flash
kernel, which saves the same tensors in the same layout (tests/test_memory.py asserts that no
T x T tensor is saved), so the attention term is measured as the GPU runs it. One autocast rule
does differ: CUDA autocasts layer_norm and group_norm to fp32 (a half input is copied to fp32
and saved, the output is fp32), the CPU runs them in the input's dtype. `Tape(device)` applies
the rule of its device, so the CPU measurement checks the very code the GPU estimate runs; it
matters where a norm sees a half input: MUSK's sub-LayerNorms and the CNN adapter's GroupNorms.

The UNet baseline (record family `unet`) has its own symbolic forward (`unet_tape`).

The model lives in one module per part: `architecture` (what a record describes, how the
strategy trains the encoder), `tape` (the symbolic forward pass and the transformer block),
`head` (adapters, decoder, loss), `unet` (the UNet baseline), `ledger` (one training step's saved
bytes, the parameters) and `estimate` (the job's peak, cached). The names below are its API.
"""

from densebench.geometry import tokens
from densebench.memory.architecture import (
    Architecture,
    Mode,
    adapts,
    architecture,
    encoder_mode,
)
from densebench.memory.estimate import (
    FRAGMENTATION,
    WORKSPACE_BYTES,
    MemoryEstimate,
    Stage,
    estimate,
    needs_checkpointing,
    predict_estimate,
    shared_estimate,
)
from densebench.memory.ledger import Ledger, ledger, params
from densebench.memory.tape import FLOAT, HALF, LONG, Device

__all__ = [
    "FLOAT",
    "FRAGMENTATION",
    "HALF",
    "LONG",
    "WORKSPACE_BYTES",
    "Architecture",
    "Device",
    "Ledger",
    "MemoryEstimate",
    "Mode",
    "Stage",
    "adapts",
    "architecture",
    "encoder_mode",
    "estimate",
    "ledger",
    "needs_checkpointing",
    "params",
    "predict_estimate",
    "shared_estimate",
    "tokens",
]
