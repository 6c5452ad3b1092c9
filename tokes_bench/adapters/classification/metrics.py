"""Top-k accuracy in percent, the number every classification record holds."""

from __future__ import annotations

import torch


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Bool per sample: is the label among the k highest scores (k capped at the class count)."""
    k = min(k, scores.shape[1])
    return (scores.topk(k, dim=1).indices == labels.view(-1, 1)).any(dim=1)


def topk_accuracy(
    scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)
) -> dict[str, float]:
    """{'top1': %, 'top5': %} over N samples of (N, C) scores; top5 only when C > 5."""
    if scores.shape[0] != labels.shape[0] or scores.shape[0] == 0:
        raise ValueError(
            f"need matching, non-empty scores {tuple(scores.shape)} and labels {tuple(labels.shape)}"
        )
    out = {}
    for k in ks:
        if k == 1 or scores.shape[1] > k:
            out[f"top{k}"] = 100.0 * topk_correct(scores, labels, k).float().mean().item()
    return out


def metric_names(num_classes: int) -> tuple[str, ...]:
    """Metrics reported for a task with `num_classes` classes."""
    return ("top1", "top5") if num_classes > 5 else ("top1",)
