"""Generated demo videos in the VOST layout: textured objects that move, deform, split and change look.

VOST's point is objects that transform (cut, melt, peel), so each demo sequence has one such event:
`cut` (an object splits into two parts that drift apart, with a void band at the cut while it
happens), `melt` (a blob deforms, grows and changes texture), `swap` (two objects, one rotating,
one shrinking and changing colour, overlapping). Ground-truth masks come from the same geometry
that draws the frames. Deterministic for a given seed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tokes_bench.adapters.vost.layout import VOID
from tokes_bench.adapters.vost.palette import voc_palette, write_indexed_png

SCENES = ("cut", "melt", "swap")


def _texture(rng: np.random.Generator, h: int, w: int, cells: int = 6) -> np.ndarray:
    """A smooth random colour texture (h, w, 3) float in [0, 255]: coarse noise, bilinearly upsampled."""
    coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), dtype=np.float32)


def _paint(img: np.ndarray, mask: np.ndarray, tex: np.ndarray, dy: float, dx: float) -> None:
    """Paint `tex` into img where mask is set, the texture moving with the object by (dy, dx)."""
    ys, xs = np.nonzero(mask)
    th, tw = tex.shape[:2]
    img[ys, xs] = tex[(ys - int(dy)) % th, (xs - int(dx)) % tw]


def _scene_cut(rng, h, w):
    tex = _texture(rng, h, w)

    def frame(t, yy, xx, img, lab):
        cy, cx = h * 0.5, w * (0.25 + 0.4 * t)
        body = ((yy - cy) / (0.22 * h)) ** 2 + ((xx - cx) / (0.2 * w)) ** 2 <= 1
        gap = max(0.0, t - 0.4) * 0.35 * h
        upper = body & (yy < cy)
        lower = body & (yy >= cy)
        up = np.roll(upper, -int(gap), axis=0)
        lo = np.roll(lower, int(gap), axis=0)
        _paint(img, up, tex, -gap, cx)
        _paint(img, lo, tex, gap, cx)
        lab[up | lo] = 1
        if 0.4 <= t <= 0.6:  # the cut itself is ambiguous: a void band along both new edges
            edge = np.abs(yy - cy) <= gap + 1.5
            lab[body & edge & ~(up | lo)] = VOID
            lab[(up | lo) & (np.abs(yy - cy) <= gap + 1.5)] = VOID

    return frame


def _scene_melt(rng, h, w):
    tex_a, tex_b = _texture(rng, h, w), _texture(rng, h, w, cells=3)

    def frame(t, yy, xx, img, lab):
        cy, cx = h * (0.45 + 0.1 * t), w * 0.5
        ang = np.arctan2(yy - cy, xx - cx)
        r = 0.2 * h * (1 + 0.5 * t) * (1 + 0.3 * t * np.sin(3 * ang + 2 * np.pi * t))
        blob = np.hypot(yy - cy, (xx - cx) * 0.8) <= r
        mixed = (1 - t) * tex_a + t * tex_b
        _paint(img, blob, mixed, 0, 0)
        lab[blob] = 1

    return frame


def _scene_swap(rng, h, w):
    tex_1, tex_2 = _texture(rng, h, w), _texture(rng, h, w)
    tint = rng.uniform(0, 255, size=3).astype(np.float32)

    def frame(t, yy, xx, img, lab):
        cy2, cx2 = h * 0.55, w * (0.7 - 0.2 * t)
        disc = np.hypot(yy - cy2, xx - cx2) <= 0.25 * h * (1 - 0.5 * t)
        _paint(img, disc, (1 - t) * tex_2 + t * tint, 0, 0)
        lab[disc] = 2
        cy1, cx1 = h * (0.3 + 0.3 * t), w * (0.2 + 0.3 * t)
        a = np.pi * t
        u = (xx - cx1) * np.cos(a) + (yy - cy1) * np.sin(a)
        v = -(xx - cx1) * np.sin(a) + (yy - cy1) * np.cos(a)
        rect = (np.abs(u) <= 0.22 * w) & (np.abs(v) <= 0.12 * h)
        _paint(img, rect, tex_1, cy1, cx1)
        lab[rect] = 1

    return frame


_BUILDERS: dict[str, Callable] = {"cut": _scene_cut, "melt": _scene_melt, "swap": _scene_swap}


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_vost_demo(
    root: str | os.PathLike,
    n_sequences: int = 3,
    n_frames: int = 20,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
    annotate_every: int = 1,
    split: str = "val",
) -> Path:
    """Write `n_sequences` videos of `n_frames` (H, W = size) in the VOST layout under root; return root.

    JPEGImages_10fps/ holds the frames (JPEGImages/ the same files), Annotations/ an indexed PNG for
    every `annotate_every`-th frame (always including the first), ImageSets/<split>.txt the names.
    """
    if n_frames < 3:
        raise ValueError(f"n_frames = {n_frames}: need at least 3 (first and last annotations are not scored)")
    root = Path(root)
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    palette = voc_palette()
    names = []
    for s in range(n_sequences):
        scene = SCENES[s % len(SCENES)]
        name = f"{s:02d}_{scene}"
        names.append(name)
        draw = _BUILDERS[scene](rng, h, w)
        background = _texture(rng, h, w * 2, cells=8)
        for d in ("JPEGImages_10fps", "JPEGImages", "Annotations"):
            shutil.rmtree(root / d / name, ignore_errors=True)  # regenerate from scratch, no stale frames
            (root / d / name).mkdir(parents=True)
        for i in range(n_frames):
            t = i / (n_frames - 1)
            pan = int(t * w * 0.3)
            img = background[:, pan : pan + w].copy()
            lab = np.zeros((h, w), dtype=np.uint8)
            draw(t, yy, xx, img, lab)
            img += rng.normal(0, 4, size=img.shape).astype(np.float32)
            stem = f"frame{i:05d}"
            jpg = root / "JPEGImages_10fps" / name / f"{stem}.jpg"
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(jpg, quality=92)
            _link_or_copy(jpg, root / "JPEGImages" / name / f"{stem}.jpg")
            if i % annotate_every == 0:
                write_indexed_png(root / "Annotations" / name / f"{stem}.png", lab, palette)
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    return root
