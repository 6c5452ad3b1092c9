"""Frozen-encoder features of an ImageFolder's train and val splits, extracted once and cached.

Both frozen protocols (linear probe, kNN) need the same thing: one pass of the encoder over each
split. Features are cached in `<work-dir>/features/` under a key of everything that decides them
(encoder file hash, transform, pooling, file list, view seed), so re-running a probe with other
head settings costs no encoder pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from tokes_bench.adapters.classification.config import FeatureSettings
from tokes_bench.adapters.classification.data import (
    CheckedItems,
    collate_checked,
    eval_transform,
    open_splits,
    probe_aug_transform,
    raise_if_error,
)
from tokes_bench.adapters.classification.progress import Progress
from tokes_bench.models import EncoderInfo, load_encoder

logger = logging.getLogger("tokes_bench")


@dataclass
class SplitFeatures:
    """Features of both splits: `train` is (views, N, D) (view 0 = eval transform), `val` is (M, D)."""

    train: torch.Tensor
    train_labels: torch.Tensor
    val: torch.Tensor
    val_labels: torch.Tensor
    classes: list[str]
    info: EncoderInfo
    extract_seconds: float

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def device_auto() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def extract(
    model: torch.nn.Module,
    dataset,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    what: str,
    log_interval_s: float = 10.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled encoder features (N, D) float32 on the CPU and labels (N,) of `dataset`, in order."""
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        CheckedItems(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_checked,
        generator=gen,
        persistent_workers=False,
    )
    progress = Progress(what, len(dataset), interval=log_interval_s)
    feats, labels = [], []
    for x, y, err in loader:
        raise_if_error(err)
        f = model.forward_head(model.forward_features(x.to(device)), pre_logits=True)
        feats.append(f.float().cpu())
        labels.append(y)
        progress.update(len(y))
    return torch.cat(feats), torch.cat(labels)


def _cache_key(info: EncoderInfo, seed: int, settings: FeatureSettings, samples, extra: dict) -> str:
    ident = info.sha256 or f"{info.path}@seed{seed}"  # a random-init encoder is fixed by its seed
    payload = {
        "encoder": ident,
        "img_size": settings.img_size,
        "crop_pct": settings.crop_pct,
        "interpolation": settings.interpolation,
        "mean": list(settings.mean),
        "std": list(settings.std),
        "pool": settings.pool,
        "samples": hashlib.sha256("\n".join(f"{p}:{y}" for p, y in samples).encode()).hexdigest(),
        **extra,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _load_or_extract(cache_dir: Path | None, key: str, make) -> tuple[torch.Tensor, torch.Tensor]:
    path = cache_dir / f"{key}.safetensors" if cache_dir else None
    if path is not None and path.is_file():
        t = load_file(str(path))
        logger.info("features: reusing cache %s", path)
        return t["features"], t["labels"]
    feats, labels = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file({"features": feats.contiguous(), "labels": labels.contiguous()}, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return feats, labels


def split_features(
    encoder: str,
    data_dir: str | Path,
    settings: FeatureSettings,
    work_dir: str | Path | None,
    seed: int = 0,
    aug_views: int = 0,
    aug: dict | None = None,
    log_interval_s: float = 10.0,
) -> SplitFeatures:
    """Load `encoder` (file or `random:<arch>`; arch checked against `settings.arch`), featurise both splits.

    View 0 of the train split uses the eval transform; views 1..aug_views use the linear-probe
    augmentation `aug` (dict of `probe_aug_transform` arguments), each with its own seed.
    """
    settings.validate()
    tf = eval_transform(
        settings.img_size, settings.crop_pct, settings.interpolation, settings.mean, settings.std
    )
    train_ds, val_ds = open_splits(data_dir, tf, tf)
    torch.manual_seed(seed)
    model, info = load_encoder(
        encoder, img_size=settings.img_size, expected_arch=settings.arch, global_pool=settings.pool
    )
    device = device_auto()
    model.eval().to(device)
    cache_dir = Path(work_dir) / "features" if (work_dir and settings.cache_features) else None
    common = dict(
        batch_size=settings.extract_batch_size,
        num_workers=settings.num_workers,
        device=device,
        log_interval_s=log_interval_s,
    )
    start = time.perf_counter()
    views = []
    for v in range(aug_views + 1):
        if v:
            train_ds.transform = probe_aug_transform(
                settings.img_size,
                interpolation=settings.interpolation,
                mean=settings.mean,
                std=settings.std,
                **(aug or {}),
            )
        key = _cache_key(
            info,
            seed,
            settings,
            train_ds.samples,
            {"split": "train", "view": v, "aug": aug if v else None, "view_seed": seed + v if v else None},
        )

        def make(v=v):
            torch.manual_seed(seed + v)
            return extract(model, train_ds, what=f"features train view {v}", seed=seed + v, **common)

        views.append(_load_or_extract(cache_dir, key, make))
    val_key = _cache_key(info, seed, settings, val_ds.samples, {"split": "val"})
    val_feats, val_labels = _load_or_extract(
        cache_dir, val_key, lambda: extract(model, val_ds, what="features val", seed=seed, **common)
    )
    return SplitFeatures(
        train=torch.stack([f for f, _ in views]),
        train_labels=views[0][1],
        val=val_feats,
        val_labels=val_labels,
        classes=list(train_ds.classes),
        info=info,
        extract_seconds=time.perf_counter() - start,
    )
