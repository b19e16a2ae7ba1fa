"""Soft Dice loss: the paper's per-image, per-class definition, background included."""

from __future__ import annotations

import torch

from densebench.train.losses import SMOOTH, dice_loss


def reference(logits, target):
    """Straightforward loop over images and classes."""
    probs = logits.softmax(1)
    values = []
    for b in range(logits.shape[0]):
        for c in range(logits.shape[1]):
            p, g = probs[b, c], (target[b] == c).float()
            values.append(1 - (2 * (p * g).sum() + SMOOTH) / (p.sum() + g.sum() + SMOOTH))
    return torch.stack(values).mean()


def test_matches_the_reference_loop():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 9, 7, generator=gen)
    target = torch.randint(0, 4, (3, 9, 7), generator=gen)
    assert torch.allclose(dice_loss(logits, target), reference(logits, target), atol=1e-6)


def test_perfect_prediction_has_near_zero_loss():
    target = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    logits = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert dice_loss(logits, target) < 1e-4


def test_ignore_pixels_do_not_count():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(1, 3, 6, 6, generator=gen)
    target = torch.randint(0, 3, (1, 6, 6), generator=gen)
    ignored = target.clone()
    ignored[:, :, :3] = 255
    changed = logits.clone()
    changed[:, :, :, :3] = torch.randn(1, 3, 6, 3, generator=gen)
    assert torch.allclose(dice_loss(logits, ignored), dice_loss(changed, ignored))
    assert not torch.allclose(dice_loss(logits, target), dice_loss(changed, target))
