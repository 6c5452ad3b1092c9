"""MAE's per-iteration learning-rate rule: linear warmup from 0, then half-cosine to `min_lr`."""

from __future__ import annotations

import math


def cosine_lr(
    epoch: float, base_lr: float, epochs: float, warmup_epochs: float, min_lr: float = 0.0
) -> float:
    """lr at fractional `epoch` (facebookresearch/mae `util/lr_sched.adjust_learning_rate`)."""
    if epoch < warmup_epochs:
        return base_lr * epoch / warmup_epochs
    span = max(epochs - warmup_epochs, 1e-12)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / span))
