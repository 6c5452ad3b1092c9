"""MAE's linear probe on cached frozen features: BatchNorm1d(affine=False) + linear, LARS, cosine + warmup.

The encoder is frozen and the protocol's augmentation is light, so the encoder runs once per
split (plus once per optional augmented view) and the head trains on the cached features:
a 90-epoch probe costs one encoder pass, not 90.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from tokes_bench.adapters.classification.config import LinearSettings
from tokes_bench.adapters.classification.features import SplitFeatures, device_auto, split_features
from tokes_bench.adapters.classification.lars import LARS
from tokes_bench.adapters.classification.metrics import topk_accuracy
from tokes_bench.adapters.classification.progress import Progress
from tokes_bench.adapters.classification.schedule import cosine_lr

logger = logging.getLogger("tokes_bench")


def linear_head(dim: int, num_classes: int) -> nn.Sequential:
    """MAE's probe head: BatchNorm1d(affine=False, eps=1e-6) then Linear (weights trunc-normal std 0.01)."""
    fc = nn.Linear(dim, num_classes)
    nn.init.trunc_normal_(fc.weight, std=0.01)
    nn.init.zeros_(fc.bias)
    return nn.Sequential(nn.BatchNorm1d(dim, affine=False, eps=1e-6), fc)


@dataclass
class ProbeResult:
    """Metrics of a probe and what it took."""

    metrics: dict[str, float]
    lr: float
    batch_size: int
    train_seconds: float
    features: SplitFeatures


@contextmanager
def one_cpu_thread(device: torch.device):
    """Run tiny CPU ops on one thread: a (batch x D) @ (D x C) step is far smaller than the cost of
    synchronising an OpenMP team (measured 1.9 ms vs 165 ms per step on a busy 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_head(
    train: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    s: LinearSettings,
    seed: int = 0,
    device: torch.device | None = None,
) -> tuple[nn.Sequential, float, int]:
    """Train the probe head on (views, N, D) features; each epoch uses every sample once, in a random view.

    Returns (head in eval mode, absolute lr, effective batch size). The batch is capped at N (a
    data set smaller than the recipe's batch), and lr = blr * batch / 256 unless `s.lr` is set.
    """
    device = device or device_auto()
    with one_cpu_thread(device):
        return _train_head(train, labels, num_classes, s, seed, device)


def _train_head(train, labels, num_classes, s, seed, device):
    views, n, dim = train.shape
    batch = min(s.batch_size, n)
    if batch != s.batch_size:
        logger.info("linear probe: batch_size %d capped to the %d training samples", s.batch_size, n)
    lr = s.lr if s.lr is not None else s.blr * batch / 256
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = linear_head(dim, num_classes).to(device)
    if s.optimizer == "lars":
        opt = LARS(head.parameters(), lr=lr, weight_decay=s.weight_decay, momentum=s.momentum)
    else:
        opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=s.momentum, weight_decay=s.weight_decay)
    train, labels = train.to(device), labels.to(device)
    iters = n // batch  # drop_last, as MAE's loader
    progress = Progress("linear probe", s.epochs, unit="epoch", interval=s.log_interval_s)
    head.train()
    for epoch in range(s.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        view = torch.randint(views, (n,), generator=gen).to(device)
        total = 0.0
        for it in range(iters):
            idx = order[it * batch : (it + 1) * batch]
            for g in opt.param_groups:
                g["lr"] = cosine_lr(epoch + it / iters, lr, s.epochs, s.warmup_epochs, s.min_lr)
            loss = F.cross_entropy(head(train[view[idx], idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        progress.update(1, note=f"loss {total / iters:.4f}, lr {opt.param_groups[0]['lr']:.3g}")
    return head.eval(), lr, batch


@torch.no_grad()
def evaluate_head(head: nn.Module, feats: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """top1 (and top5 beyond 5 classes) in percent of the head on (M, D) features."""
    device = next(head.parameters()).device
    return topk_accuracy(head(feats.to(device)).cpu(), labels.cpu())


def run_linear_probe(encoder: str, data_dir, settings: LinearSettings, work_dir=None, seed: int = 0) -> ProbeResult:
    """Extract features (cached) and train + evaluate the MAE linear probe."""
    aug = dict(scale=settings.aug_scale, hflip=settings.aug_hflip)
    feats = split_features(
        encoder,
        data_dir,
        settings,
        work_dir,
        seed=seed,
        aug_views=settings.aug_views,
        aug=aug,
        log_interval_s=settings.log_interval_s,
    )
    start = time.perf_counter()
    head, lr, batch = train_head(feats.train, feats.train_labels, feats.num_classes, settings, seed=seed)
    metrics = evaluate_head(head, feats.val, feats.val_labels)
    return ProbeResult(metrics, lr, batch, time.perf_counter() - start, feats)
