"""Train stage: the training loop, losses, LR schedule and torch runtime."""
