"""DINO's frozen-feature label propagation (facebookresearch/dino `eval_video_segmentation.py`), vectorised.

Per target frame: affinity exp(cos / temperature) between its patch tokens and those of the context
(first frame with its ground truth + the `n_last_frames` previous frames with their soft labels),
restricted to a (2r+1)^2 patch neighbourhood, top-k jointly over all context tokens (threshold at
the k-th largest, then normalised); labels upsampled bilinearly by the patch size, each channel
min-max normalised, argmax, nearest-resized to the original size. Frame 0's output is its ground
truth. Differences from the script: the neighbourhood mask is built without Python loops, every
frame's features are computed once in batches, and masks use the frames' size rule (the script
transposes square masks).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tokes_bench.adapters.vost.layout import VOID, check_same_size
from tokes_bench.adapters.vost.params import PropagationConfig

MEAN = (0.485, 0.456, 0.406)
STD = (0.228, 0.224, 0.225)  # DINO's values (0.228, not ImageNet's 0.229)


class FeatureExtractor(Protocol):
    """Maps a batch of normalised frames (B, 3, H, W) to patch features (B, H // p, W // p, D)."""

    patch_size: int

    def __call__(self, frames: torch.Tensor) -> torch.Tensor: ...


class ViTFeatures:
    """Last-block patch tokens after the final norm of a timm ViT (built with dynamic_img_size=True)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()
        self.patch_size = int(model.patch_embed.patch_size[0])
        self.prefix = int(getattr(model, "num_prefix_tokens", 1))

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        b, _, h, w = frames.shape
        tokens = self.model.forward_features(frames)[:, self.prefix :]
        return tokens.reshape(b, h // self.patch_size, w // self.patch_size, -1)


def target_size(h: int, w: int, short_side: int, multiple: int) -> tuple[int, int]:
    """(height, width) to process a frame at: short side = short_side, long side floored to `multiple`."""
    if h > w:
        th, tw = int((short_side * h / w) // multiple * multiple), short_side
    else:
        th, tw = short_side, int((short_side * w / h) // multiple * multiple)
    if th <= 0 or tw <= 0:
        raise ValueError(f"frame {w}x{h} at short side {short_side} and multiple {multiple} leaves no pixels")
    return th, tw


def load_frame(path: Path, size_hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Read a JPEG (BGR via OpenCV, as DINO), resize bilinearly, convert to normalised RGB (3, H, W)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    ori = img.shape[:2]
    img = cv2.resize(img, (size_hw[1], size_hw[0]))
    x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1], dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (x - mean) / std, ori


def neighborhood_mask(h: int, w: int, radius: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h*w, h*w) float mask: 1 where two patches are within `radius` rows and columns of each other."""
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    near_r = (rows[:, None] - rows[None, :]).abs() <= radius
    near_c = (cols[:, None] - cols[None, :]).abs() <= radius
    return (near_r[:, None, :, None] & near_c[None, :, None, :]).reshape(h * w, h * w).float()


def propagate_step(
    feat_tar: torch.Tensor,
    ctx_feats: torch.Tensor,
    ctx_labels: torch.Tensor,
    mask: torch.Tensor | None,
    topk: int,
    temperature: float,
) -> torch.Tensor:
    """Soft labels (C, hw) of a target frame from context features (n, hw, d) and labels (n, C, hw).

    Features must be L2-normalised. The top-k is taken jointly over all n*hw context tokens.
    """
    n, hw, _ = ctx_feats.shape
    # (target queries, context frames, context keys), flattened over all context tokens per query
    aff = torch.einsum("qd,nkd->qnk", feat_tar, ctx_feats).div_(temperature).exp_()
    if mask is not None:
        aff.mul_(mask[:, None, :])
    aff = aff.reshape(feat_tar.shape[0], n * hw)
    kth = torch.topk(aff, k=min(topk, n * hw), dim=1).values[:, -1:]
    aff.masked_fill_(aff < kth, 0)
    aff.div_(aff.sum(dim=1, keepdim=True))
    c = ctx_labels.shape[1]
    return ctx_labels.permute(1, 0, 2).reshape(c, n * hw) @ aff.T


def labels_to_mask(soft: torch.Tensor, patch_size: int, out_hw: tuple[int, int]) -> np.ndarray:
    """(C, h, w) soft labels -> uint8 id map of size out_hw: bilinear x patch, per-channel min-max, argmax."""
    up = F.interpolate(soft[None], scale_factor=patch_size, mode="bilinear", align_corners=False)[0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    shifted = up - lo
    hi = up.amax(dim=(1, 2), keepdim=True)
    up = torch.where(hi > 0, shifted / shifted.amax(dim=(1, 2), keepdim=True), up)
    ids = up.argmax(dim=0).to(torch.uint8).cpu().numpy()
    return np.asarray(Image.fromarray(ids).resize((out_hw[1], out_hw[0]), Image.NEAREST))


def first_frame_labels(mask: np.ndarray, grid_hw: tuple[int, int]) -> torch.Tensor:
    """One-hot (C, h, w) of the first annotation, nearest-resized to the patch grid; void is background."""
    small = np.asarray(Image.fromarray(mask).resize((grid_hw[1], grid_hw[0]), Image.NEAREST)).copy()
    small[small == VOID] = 0
    full = mask[mask != VOID]
    n_channels = int(full.max()) + 1 if full.size else 1
    return F.one_hot(torch.from_numpy(small).long(), n_channels).permute(2, 0, 1).float()


def _batches(
    paths: Sequence[Path], size_hw: tuple[int, int], batch: int, pool: ThreadPoolExecutor
) -> Iterator[tuple[int, torch.Tensor, list[tuple[int, int]]]]:
    """Yield (start index, frames (B, 3, H, W), original sizes), decoding each batch on the thread pool."""
    for start in range(0, len(paths), batch):
        chunk = list(pool.map(lambda p: load_frame(p, size_hw), paths[start : start + batch]))
        yield start, torch.stack([c[0] for c in chunk]), [c[1] for c in chunk]


def propagate_video(
    frame_paths: Sequence[Path],
    first_mask: np.ndarray,
    extractor: FeatureExtractor,
    cfg: PropagationConfig,
    write: Callable[[int, np.ndarray], None],
    device: torch.device | str = "cpu",
    first_mask_path: Path | None = None,
) -> None:
    """Propagate the first frame's mask through all frames, calling write(frame index, id map) per frame."""
    ori_hw = first_mask.shape[:2]
    size_hw = target_size(*ori_hw, cfg.short_side, cfg.size_multiple)
    p = extractor.patch_size
    grid = (size_hw[0] // p, size_hw[1] // p)
    mask_nb = neighborhood_mask(*grid, cfg.size_mask_neighborhood, device) if cfg.size_mask_neighborhood > 0 else None
    first_labels = first_frame_labels(first_mask, grid).to(device).flatten(1)
    first_feat: torch.Tensor | None = None
    queue: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=cfg.n_last_frames)
    write(0, first_mask)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for start, frames, oris in _batches(frame_paths, size_hw, cfg.batch_size, pool):
            for j, o in enumerate(oris):
                check_same_size(ori_hw, o, first_mask_path or frame_paths[0], frame_paths[start + j])
            feats = extractor(frames.to(device))
            if tuple(feats.shape[1:3]) != grid:
                raise ValueError(f"feature extractor returned a {tuple(feats.shape[1:3])} grid, expected {grid}")
            feats = F.normalize(feats.flatten(1, 2).float(), dim=-1)
            for j in range(feats.shape[0]):
                idx = start + j
                if idx == 0:
                    first_feat = feats[0]
                    continue
                ctx_f = torch.stack([first_feat] + [q[0] for q in queue])
                ctx_l = torch.stack([first_labels] + [q[1] for q in queue])
                soft = propagate_step(feats[j], ctx_f, ctx_l, mask_nb, cfg.topk, cfg.temperature)
                queue.append((feats[j], soft))
                write(idx, labels_to_mask(soft.reshape(-1, *grid), p, ori_hw))


def native_img_size(spec: str) -> int:
    """Image size an exported encoder was trained at (pos_embed grid x patch size); 224 otherwise.

    Building the model at its own grid lets timm interpolate position embeddings once, straight to
    each frame's grid, instead of twice (checkpoint grid -> 224 grid -> frame grid).
    """
    from safetensors import safe_open

    from tokes_bench.models.vit import ENCODER_ARCHS

    path = Path(spec)
    if spec.startswith("random:") or path.suffix != ".safetensors" or not path.is_file():
        return 224
    try:
        with safe_open(str(path), framework="pt") as f:
            arch = (f.metadata() or {}).get("arch", "")
            n_tokens = f.get_slice("pos_embed").get_shape()[1]
    except Exception:  # unreadable files get load_encoder's own error message
        return 224
    grid = int(round((n_tokens - 1) ** 0.5))
    patch = ENCODER_ARCHS.get(arch, {}).get("patch_size")
    return grid * patch if patch and grid * grid == n_tokens - 1 else 224
