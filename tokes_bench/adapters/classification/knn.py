"""DINO's weighted kNN classifier on frozen features: a training-free check of an encoder."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tokes_bench.adapters.classification.config import KnnSettings
from tokes_bench.adapters.classification.features import SplitFeatures, split_features
from tokes_bench.adapters.classification.metrics import topk_accuracy


@torch.no_grad()
def knn_scores(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> torch.Tensor:
    """(M, C) class votes: each test point's k most cosine-similar train points vote exp(sim / T).

    As DINO's `knn_classifier` (eval_knn.py): features L2-normalised, top-k by similarity,
    one-hot labels weighted by exp(similarity / temperature) and summed per class.
    """
    if train.shape[0] != train_labels.shape[0]:
        raise ValueError(f"{train.shape[0]} train features but {train_labels.shape[0]} labels")
    k = min(k, train.shape[0])
    train_n = F.normalize(train.float(), dim=1)
    out = []
    for start in range(0, test.shape[0], chunk):
        sim = F.normalize(test[start : start + chunk].float(), dim=1) @ train_n.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], num_classes, dtype=sim.dtype, device=sim.device)
        votes.scatter_add_(1, train_labels[top_idx], (top_sim / temperature).exp())
        out.append(votes)
    return torch.cat(out)


@dataclass
class KnnResult:
    """Metrics of a kNN evaluation and what it took."""

    metrics: dict[str, float]
    seconds: float
    features: SplitFeatures


def run_knn(encoder: str, data_dir, settings: KnnSettings, work_dir=None, seed: int = 0) -> KnnResult:
    """Extract features (cached) of both splits and classify val by kNN over train."""
    feats = split_features(encoder, data_dir, settings, work_dir, seed=seed)
    start = time.perf_counter()
    scores = knn_scores(
        feats.train[0], feats.train_labels, feats.val, feats.num_classes, settings.k, settings.temperature
    )
    return KnnResult(topk_accuracy(scores, feats.val_labels), time.perf_counter() - start, feats)
