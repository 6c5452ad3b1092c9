"""MAE-style pixel decoder: a narrow ViT over all patch slots that predicts each slot's pixels."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block
from torch import nn

from tokes_bench.models.vit import sincos_pos_embed_2d


class PixelDecoder(nn.Module):
    """Linear embed -> (+ mask tokens) -> fixed sin-cos pos embed -> `depth` blocks -> norm -> pixels.

    MAE's decoder (facebookresearch/mae `forward_decoder`): with `ids_restore` the input holds only
    the visible tokens and mask tokens fill the other slots; without it the input already holds a
    token for every slot (TOKES: the mixed sequence).
    """

    def __init__(
        self,
        embed_dim: int,
        grid_hw: tuple[int, int],
        patch_size: int,
        in_chans: int = 3,
        decoder_dim: int = 512,
        depth: int = 8,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        use_mask_token: bool = False,
    ) -> None:
        super().__init__()
        if decoder_dim % num_heads:
            raise ValueError(f"decoder_dim {decoder_dim} is not divisible by decoder num_heads {num_heads}")
        self.grid_hw = tuple(grid_hw)
        self.embed = nn.Linear(embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim)) if use_mask_token else None
        self.register_buffer(
            "pos_embed", sincos_pos_embed_2d(decoder_dim, self.grid_hw, cls_token=True), persistent=False
        )
        self.blocks = nn.ModuleList(
            [Block(decoder_dim, num_heads, mlp_ratio, qkv_bias=True) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.pred = nn.Linear(decoder_dim, patch_size * patch_size * in_chans)

    def forward(self, x: torch.Tensor, ids_restore: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, 1 + L, D) encoder output (cls first) -> (B, N, p*p*C) pixel predictions per slot."""
        x = self.embed(x)  # (B, 1+L, Dd)
        if ids_restore is not None:
            if self.mask_token is None:
                raise ValueError("PixelDecoder got ids_restore but was built with use_mask_token=False")
            b, n = ids_restore.shape
            mask_tokens = self.mask_token.expand(b, n + 1 - x.shape[1], -1)  # (B, N-L, Dd)
            x_ = torch.cat([x[:, 1:], mask_tokens], dim=1)  # (B, N, Dd) in shuffled order
            x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # slot order
            x = torch.cat([x[:, :1], x_], dim=1)  # (B, 1+N, Dd)
        x = x + self.pos_embed.to(x.dtype)
        for blk in self.blocks:
            x = blk(x)
        x = self.pred(self.norm(x))  # (B, 1+N, p*p*C)
        return x[:, 1:]
