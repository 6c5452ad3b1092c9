"""Build timm's VisionTransformer as MAE configures it: cls token, fixed 2D sin-cos position embeddings."""

from __future__ import annotations

import numpy as np
import torch
from timm.models.vision_transformer import VisionTransformer

# Every arch accepted by the project: timm model names whose encoder is a plain ViT.
ENCODER_ARCHS: dict[str, dict] = {
    "vit_tiny_patch16_224": dict(patch_size=16, embed_dim=192, depth=12, num_heads=3),
    "vit_small_patch16_224": dict(patch_size=16, embed_dim=384, depth=12, num_heads=6),
    "vit_base_patch16_224": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch16_224": dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16),
    "vit_huge_patch14_224": dict(patch_size=14, embed_dim=1280, depth=32, num_heads=16),
}


def _sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """MAE's 1D sin-cos embedding of positions `pos` into `dim` channels (half sin, half cos)."""
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_pos_embed_2d(embed_dim: int, grid_hw: tuple[int, int], cls_token: bool = True) -> torch.Tensor:
    """MAE's `get_2d_sincos_pos_embed`: (1, [1+] H*W, D) with a zero row for the cls token.

    The first half of the channels encodes the column (w) index, the second half the row (h) index,
    exactly as facebookresearch/mae `util/pos_embed.py` does.
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim must be divisible by 4 for 2D sin-cos embeddings, got {embed_dim}")
    gh, gw = grid_hw
    grid_w, grid_h = np.meshgrid(np.arange(gw, dtype=np.float64), np.arange(gh, dtype=np.float64))
    emb = np.concatenate([_sincos_1d(embed_dim // 2, grid_w), _sincos_1d(embed_dim // 2, grid_h)], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


def build_encoder(
    arch: str,
    img_size: int | tuple[int, int] = 224,
    drop_path_rate: float = 0.0,
    global_pool: str = "token",
    num_classes: int = 0,
    dynamic_img_size: bool = False,
    fixed_pos_embed: bool = True,
    **kwargs,
) -> VisionTransformer:
    """Build `arch` as a timm VisionTransformer with MAE's fixed sin-cos position embeddings.

    The state-dict keys are timm's, so a checkpoint from this encoder loads with
    `timm.create_model(arch, num_classes=0).load_state_dict(sd, strict=True)`.
    """
    if arch not in ENCODER_ARCHS:
        raise ValueError(f"unknown encoder arch {arch!r}; expected one of {sorted(ENCODER_ARCHS)}")
    cfg = dict(ENCODER_ARCHS[arch])
    cfg.update(kwargs)
    model = VisionTransformer(
        img_size=img_size,
        num_classes=num_classes,
        global_pool=global_pool,
        drop_path_rate=drop_path_rate,
        dynamic_img_size=dynamic_img_size,
        **cfg,
    )
    if fixed_pos_embed:
        grid = model.patch_embed.grid_size
        with torch.no_grad():
            model.pos_embed.copy_(sincos_pos_embed_2d(model.embed_dim, grid, cls_token=True))
        model.pos_embed.requires_grad_(False)
    return model
