"""Embedded demo images: scikit-learn's bundled 8x8 digits, upsampled and written as an ImageFolder.

The digits ship inside scikit-learn (no download), are real images with 10 classes, and are small
enough that a CPU pretrains and probes on them in minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "val")
_MARKER = "tokes_bench_digits.json"


def digits_arrays(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 RGB images (N, size, size, 3) and their labels (N,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    gray = (d.images / 16.0 * 255.0).clip(0, 255).astype(np.uint8)
    out = np.stack([np.asarray(Image.fromarray(g).resize((size, size), Image.BILINEAR)) for g in gray])
    return np.repeat(out[..., None], 3, axis=-1), d.target.astype(np.int64)


def write_digits_imagefolder(
    root: str | Path, size: int = 64, val_fraction: float = 0.25, seed: int = 0
) -> Path:
    """Write `root/{train,val}/<digit>/<index>.png` once (idempotent: reuses a matching tree).

    The split is stratified-free but seeded: the same arguments always give the same files.
    """
    root = Path(root)
    spec = {"size": size, "val_fraction": val_fraction, "seed": seed}
    marker = root / _MARKER
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return root
    images, labels = digits_arrays(size)
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = int(round(len(images) * val_fraction))
    split_of = {int(i): ("val" if k < n_val else "train") for k, i in enumerate(order)}
    for split in SPLITS:
        for c in range(10):
            (root / split / str(c)).mkdir(parents=True, exist_ok=True)
    for i, (img, y) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(img).save(root / split_of[i] / str(int(y)) / f"{i:04d}.png")
    marker.write_text(json.dumps(spec))
    return root
