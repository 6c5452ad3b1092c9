"""Images <-> patch vectors in MAE's layout, and MAE's per-patch normalised pixel targets."""

from __future__ import annotations

import torch


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/p * W/p, p*p*C), each patch flattened as (row, col, channel) like MAE."""
    b, c, h, w = imgs.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {p}")
    gh, gw = h // p, w // p
    x = imgs.reshape(b, c, gh, p, gw, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(b, gh * gw, p * p * c)


def unpatchify(x: torch.Tensor, patch_size: int, grid_hw: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """Inverse of `patchify`: (B, gh*gw, p*p*C) -> (B, C, gh*p, gw*p)."""
    b = x.shape[0]
    p = patch_size
    gh, gw = grid_hw
    x = x.reshape(b, gh, gw, p, p, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(b, channels, gh * p, gw * p)


def patch_stats(patches: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch mean and std as MAE's norm_pix_loss uses them (unbiased variance, + eps inside the root)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return mean, (var + eps) ** 0.5


def pixel_targets(imgs: torch.Tensor, patch_size: int, norm_pix: bool = True) -> torch.Tensor:
    """Reconstruction targets (B, N, p*p*C): patches, normalised per patch when `norm_pix` (MAE default)."""
    target = patchify(imgs, patch_size)
    if norm_pix:
        mean, std = patch_stats(target)
        target = (target - mean) / std
    return target
