"""MAE baseline, numerically the official formulation (facebookresearch/mae `models_mae.py`)."""

from __future__ import annotations

import torch
from mmengine.registry import MODELS

from tokes_bench.models.patchify import patchify, unpatchify
from tokes_bench.pretrain.base import PixelPretrainModel, masked_patch_loss


def random_masking(
    x: torch.Tensor, mask_ratio: float, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking by argsort of noise.

    x: (B, N, D) -> visible tokens (B, L, D), mask (B, N) with 1 = removed, ids_restore (B, N).
    """
    b, n, d = x.shape
    len_keep = int(n * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)  # ascend: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_visible = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
    mask = torch.ones(b, n, device=x.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # back to slot order
    return x_visible, mask, ids_restore


@MODELS.register_module(name="MaePretrainModel")
class MaePretrainModel(PixelPretrainModel):
    """Masked autoencoder: visible-only encoder, mask tokens in the decoder, loss on masked patches."""

    METHOD = "mae"

    def __init__(
        self,
        arch: str = "vit_base_patch16_224",
        img_size: int = 224,
        mask_ratio: float = 0.75,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        norm_pix_loss: bool = True,
        data_preprocessor: dict | None = None,
    ) -> None:
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        super().__init__(
            arch, img_size, decoder_dim, decoder_depth, decoder_heads, norm_pix_loss, data_preprocessor,
            use_mask_token=True,
        )
        self.mask_ratio = mask_ratio

    def forward_masked(self, imgs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel predictions (B, N, p*p*C) and the mask (B, N) for one masking of `imgs`."""
        x = self.add_pos_embed(self.embed_patches(imgs))  # (B, N, D) with positions
        x, mask, ids_restore = random_masking(x, self.mask_ratio, noise)  # (B, L, D)
        latent = self.run_encoder(x)  # (B, 1+L, D)
        return self.decoder(latent, ids_restore), mask  # (B, N, p*p*C)

    def loss(self, imgs: torch.Tensor) -> dict[str, torch.Tensor]:
        (noise,) = self.step_noise(imgs.shape[0], 1)
        pred, mask = self.forward_masked(imgs, noise)
        return {"loss": masked_patch_loss(pred, self.targets(imgs), mask)}

    def reconstruct(self, imgs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predictions for visualisation: pred, mask (bool) and the masked pixel input (masked = 0)."""
        (noise,) = self.step_noise(imgs.shape[0], 1)
        pred, mask = self.forward_masked(imgs, noise)
        keep = (1 - mask).unsqueeze(-1)
        masked = unpatchify(patchify(imgs, self.patch_size) * keep, self.patch_size, self.grid_hw)
        return {"pred": pred, "mask": mask.bool(), "input": masked}
