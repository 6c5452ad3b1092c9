"""Indexed-PNG palettes and atomic writing of label maps."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from tokes_bench.results.atomic import atomic_write_bytes


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC / DAVIS colour map (id 1 dark red, 2 dark green, ...) as an (n, 3) uint8 array."""
    ids = np.arange(n)
    pal = np.zeros((n, 3), dtype=np.uint8)
    for bit in range(8):
        for ch in range(3):
            pal[:, ch] |= (((ids >> (3 * bit + ch)) & 1) << (7 - bit)).astype(np.uint8)
    return pal


def read_palette(path: str | os.PathLike) -> np.ndarray | None:
    """The (256, 3) palette of an indexed PNG, or None when the image has none."""
    with Image.open(path) as im:
        pal = im.getpalette()
    if not pal:
        return None
    arr = np.zeros(768, dtype=np.uint8)
    arr[: len(pal)] = pal[:768]
    return arr.reshape(256, 3)


def write_indexed_png(path: str | os.PathLike, labels: np.ndarray, palette: np.ndarray) -> Path:
    """Write a 2-D uint8 label map as an indexed PNG with `palette`, atomically."""
    if labels.ndim != 2:
        raise ValueError(f"{path}: an indexed PNG needs a 2-D label map, got shape {labels.shape}")
    im = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="P")
    im.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
