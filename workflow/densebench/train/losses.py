"""Training losses, by the name a run spec's `train.loss` gives: the paper's soft Dice loss
(protocol.md §3: per image and class, background included), every grid run's, and the
cross-entropy of the authors' UNet recipe ([F] configs/unet.yaml;
densebench.spec.UNET_PAPER_RECIPE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SMOOTH = 1e-5


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """mean over (image, class) of 1 - (2 sum p g + s) / (sum p + sum g + s), ignore masked."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1).to(logits.dtype)
    probs = logits.float().softmax(dim=1) * valid
    onehot = F.one_hot(target.clamp_max(num_classes - 1).long(), num_classes)
    onehot = onehot.permute(0, 3, 1, 2).to(probs.dtype) * valid
    inter = (probs * onehot).sum(dim=(2, 3))
    denom = probs.sum(dim=(2, 3)) + onehot.sum(dim=(2, 3))
    return (1.0 - (2.0 * inter + SMOOTH) / (denom + SMOOTH)).mean()


def cross_entropy_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255
) -> torch.Tensor:
    """The authors' CrossEntropyLoss ([F] models/losses.py, built by get_loss_function for
    `type: cross_entropy`): F.cross_entropy without class weights, mean over the pixels whose
    label is not `ignore_index` (their 255), in float32 as autocast runs it."""
    return F.cross_entropy(logits.float(), target.long(), ignore_index=ignore_index)


LOSSES = {"dice": dice_loss, "cross_entropy": cross_entropy_loss}
"""Loss function of each `train.loss` name (densebench.spec.LOSSES)."""
