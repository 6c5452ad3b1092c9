"""What TOKES and MAE share: encoder + decoder build, MAE init, step-seeded noise, loss checks.

Randomness (swap slots, masks) is drawn from a generator seeded by (run seed, step) for the
*global* batch, and each rank takes its rows: a resumed run draws exactly what an uninterrupted
run would, and N processes draw what one process with the same global batch draws.
"""

from __future__ import annotations

import math
from abc import abstractmethod

import torch
import torch.distributed as torch_dist
from mmengine.model import BaseModel
from torch import nn

from tokes_bench.models.decoder import PixelDecoder
from tokes_bench.models.patchify import pixel_targets
from tokes_bench.models.vit import build_encoder


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN/inf; raised before the optimizer step so no weight is touched."""


def mae_init_(module: nn.Module) -> None:
    """MAE's `_init_weights`: xavier-uniform Linear weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def dist_rank_world() -> tuple[int, int]:
    """(rank, world size), (0, 1) when no process group is initialised."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank(), torch_dist.get_world_size()
    return 0, 1


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over patches of the per-patch MSE; over `mask`-ed patches only when given (MAE's form)."""
    per_patch = ((pred.float() - target) ** 2).mean(dim=-1)  # (B, N)
    if mask is None:
        return per_patch.mean()
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)


class PixelPretrainModel(BaseModel):
    """Base of the pretraining objectives: a timm ViT encoder and an MAE-style pixel decoder."""

    METHOD = "other"

    def __init__(
        self,
        arch: str = "vit_base_patch16_224",
        img_size: int = 224,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        norm_pix_loss: bool = True,
        data_preprocessor: dict | None = None,
        use_mask_token: bool = False,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.arch = arch
        self.img_size = img_size
        self.norm_pix_loss = norm_pix_loss
        self.encoder = build_encoder(arch, img_size=img_size)
        self.patch_size = self.encoder.patch_embed.patch_size[0]
        self.grid_hw = tuple(self.encoder.patch_embed.grid_size)
        self.num_patches = self.grid_hw[0] * self.grid_hw[1]
        self.decoder = PixelDecoder(
            self.encoder.embed_dim,
            self.grid_hw,
            self.patch_size,
            decoder_dim=decoder_dim,
            depth=decoder_depth,
            num_heads=decoder_heads,
            use_mask_token=use_mask_token,
        )
        # Seed drawn from the global RNG mmengine seeded before building the model; saved with
        # the checkpoint so a resumed run continues the same noise sequence.
        self.register_buffer("rng_seed", torch.randint(0, 2**31 - 1, ()), persistent=True)
        self.register_buffer("num_steps", torch.zeros((), dtype=torch.long), persistent=True)
        self._init_weights()

    def init_weights(self) -> None:
        """mmengine's Runner calls this before training. Its default would call timm's
        `VisionTransformer.init_weights`, which re-randomises the encoder *and* overwrites the fixed
        sin-cos position embedding with noise; apply MAE's initialisation instead."""
        self._init_weights()

    def _init_weights(self) -> None:
        """MAE's initialisation (the fixed sin-cos position embeddings are left alone)."""
        w = self.encoder.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.encoder.cls_token, std=0.02)
        if self.decoder.mask_token is not None:
            nn.init.normal_(self.decoder.mask_token, std=0.02)
        for name, module in self.named_modules():
            if name != "encoder.patch_embed.proj":
                mae_init_(module)

    # --- shared steps -------------------------------------------------------------------------
    def step_noise(self, batch: int, count: int) -> list[torch.Tensor]:
        """`count` uniform (batch, N) noise tensors for this rank's rows of the global batch.

        Drawn for the global batch (batch x world) from a generator seeded by (seed, step); this
        rank keeps rows rank::world, which are the global positions of its samples under
        mmengine's DefaultSampler.
        """
        rank, world = dist_rank_world()
        g = torch.Generator().manual_seed(int(self.rng_seed) * 1_000_003 + int(self.num_steps))
        dev = self.encoder.cls_token.device
        return [
            torch.rand(batch * world, self.num_patches, generator=g)[rank::world].to(dev) for _ in range(count)
        ]

    def embed_patches(self, imgs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N, D) patch embeddings, no position embedding yet."""
        return self.encoder.patch_embed(imgs)

    def add_pos_embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Add the fixed position embedding of slot n to the token in slot n: (B, N, D)."""
        return tokens + self.encoder.pos_embed[:, 1:].to(tokens.dtype)

    def run_encoder(self, tokens: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Prepend the cls token, run the blocks (optionally masked) and the final norm: (B, 1+L, D)."""
        enc = self.encoder
        cls = (enc.cls_token + enc.pos_embed[:, :1]).to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        x = enc.norm_pre(torch.cat([cls, tokens], dim=1))
        for blk in enc.blocks:
            x = blk(x, attn_mask=attn_mask) if attn_mask is not None else blk(x)
        return enc.norm(x)

    def targets(self, imgs: torch.Tensor) -> torch.Tensor:
        """Per-patch (normalised) pixel targets (B, N, p*p*C)."""
        return pixel_targets(imgs.float(), self.patch_size, self.norm_pix_loss)

    # --- mmengine interface -------------------------------------------------------------------
    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = "loss"):
        """mode 'loss' -> dict of losses (one training step); 'predict'/'tensor' -> reconstruction dict."""
        if inputs.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"input images are {tuple(inputs.shape[-2:])} but the model was built for img_size "
                f"{self.img_size}; set the dataset's img_size to the model's"
            )
        if mode == "loss":
            losses = self.loss(inputs)
            self.num_steps += 1
            return losses
        if mode in ("predict", "tensor"):
            return self.reconstruct(inputs)
        raise ValueError(f"unknown forward mode {mode!r}; expected 'loss', 'predict' or 'tensor'")

    @abstractmethod
    def loss(self, imgs: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step's losses (keys with 'loss' are summed by mmengine); defined by each objective."""

    @abstractmethod
    def reconstruct(self, imgs: torch.Tensor) -> dict[str, torch.Tensor]:
        """dict(pred (B, N, p*p*C), mask (B, N) bool, input (B, C, H, W)); defined by each objective."""

    def parse_losses(self, losses: dict[str, torch.Tensor]):
        """mmengine's sum of `loss*` terms, refusing NaN/inf before any update and averaging the
        logged values over ranks (so a multi-process loss curve is the global batch's)."""
        loss, log_vars = super().parse_losses(losses)
        names = list(log_vars)
        values = torch.tensor([float(torch.as_tensor(log_vars[k]).detach()) for k in names], dtype=torch.float64)
        _, world = dist_rank_world()
        if world > 1:
            finite = torch.tensor([float(torch.isfinite(values).all())], dtype=torch.float64)
            packed = torch.cat([values.nan_to_num(0.0), finite]).to(loss.device)
            torch_dist.all_reduce(packed)
            packed = packed.cpu()
            if packed[-1] < world:
                values = values * float("nan")
            else:
                values = packed[:-1] / world
        bad = {k: float(v) for k, v in zip(names, values, strict=True) if not math.isfinite(float(v))}
        if bad or not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"non-finite loss at training step {int(self.num_steps)} "
                f"(values {bad or {'loss': float(loss)}}); training stopped before the optimizer step"
            )
        return loss, {k: float(v) for k, v in zip(names, values, strict=True)}
