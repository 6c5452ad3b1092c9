"""TOKES: paired images exchange patch tokens at sampled slots; the decoder recovers each image.

Pairing: image i is paired with image (i + B/2) mod B of the per-device batch (the batch rolled by
half, an involution, so the two images of a pair *exchange* tokens at the same slots and both
mixed directions are trained). Swapping acts on patch embeddings before position embeddings are
added, so a foreign token takes the position embedding of the slot it lands in.

Ablations (all config values): `mix_rule` random (exact round(N*ratio) slots) | bernoulli (each
slot with probability ratio); `positions` aligned (partner's token from the same slot) | shuffled
(from a random other swapped slot); `restrict_attention` (MixMAE: tokens attend only to tokens of
their own source image, cls belongs to the base image); `loss_on` swapped | all; `aux_weight` > 0
adds a per-token "foreign or own" head (MixedAE).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import nn

from tokes_bench.models.patchify import patchify, unpatchify
from tokes_bench.pretrain.base import PixelPretrainModel, masked_patch_loss

MIX_RULES = ("random", "bernoulli")
POSITIONS = ("aligned", "shuffled")
LOSS_ON = ("swapped", "all")


@dataclass
class SwapPlan:
    """Which token lands in each slot of every mixed sequence.

    partner: (B,) batch index of each image's partner; swap_mask: (B, N) bool, True where the slot
    holds a partner token; src_index: (B, N) long, the partner slot the token comes from (own slot
    index where not swapped).
    """

    partner: torch.Tensor
    swap_mask: torch.Tensor
    src_index: torch.Tensor


def half_roll_partner(batch: int, device=None) -> torch.Tensor:
    """Partner of each batch index: (i + B/2) mod B; B must be even so that pairs are exchanges."""
    if batch % 2:
        raise ValueError(
            f"TOKES pairs the images of a per-device batch by rolling it by half; the batch size "
            f"must be even, got {batch} (set train_dataloader.batch_size to an even number and keep "
            f"drop_last=True)"
        )
    return (torch.arange(batch, device=device) + batch // 2) % batch


def swap_mask_from_noise(noise: torch.Tensor, ratio: float, rule: str) -> torch.Tensor:
    """(B, N) bool swap mask; the pair (i, i+B/2) shares the mask drawn from row i's noise."""
    b, n = noise.shape
    half = noise[: b // 2]
    if rule == "random":
        k = int(round(n * ratio))
        ranks = torch.argsort(torch.argsort(half, dim=1), dim=1)  # rank of each slot's noise
        mask = ranks < k
    elif rule == "bernoulli":
        mask = half < ratio
    else:
        raise ValueError(f"unknown mix_rule {rule!r}; expected one of {MIX_RULES}")
    return torch.cat([mask, mask], dim=0)


def source_slots(swap_mask: torch.Tensor, perm_noise: torch.Tensor | None) -> torch.Tensor:
    """(B, N) partner slot feeding each slot: identity (aligned), or for `perm_noise` given, the
    swapped slots of each row permuted among themselves in the order of `perm_noise` (shuffled)."""
    b, n = swap_mask.shape
    idx = torch.arange(n, device=swap_mask.device).expand(b, n)
    if perm_noise is None:
        return idx.clone()
    # Swapped slots first (in slot order / in random order), then unswapped slots in slot order
    # for both keys, so unswapped slots map to themselves.
    dest = torch.argsort(torch.where(swap_mask, idx.float(), idx.float() + n), dim=1)
    src = torch.argsort(torch.where(swap_mask, perm_noise, 2.0 + idx.float() / n), dim=1)
    return torch.empty_like(idx).scatter_(1, dest, src)


def sample_swaps(
    noise_slots: torch.Tensor, noise_perm: torch.Tensor, ratio: float, rule: str = "random",
    positions: str = "aligned",
) -> SwapPlan:
    """Swap plan for a batch from two (B, N) uniform noise tensors."""
    if positions not in POSITIONS:
        raise ValueError(f"unknown positions {positions!r}; expected one of {POSITIONS}")
    b = noise_slots.shape[0]
    partner = half_roll_partner(b, noise_slots.device)
    mask = swap_mask_from_noise(noise_slots, ratio, rule)
    src = source_slots(mask, noise_perm if positions == "shuffled" else None)
    return SwapPlan(partner=partner, swap_mask=mask, src_index=src)


def mix_tokens(x: torch.Tensor, plan: SwapPlan) -> torch.Tensor:
    """(B, N, D) tokens -> mixed tokens: own token, or the partner's token from `src_index`."""
    partner_tokens = x[plan.partner]  # (B, N, D)
    foreign = torch.gather(partner_tokens, 1, plan.src_index.unsqueeze(-1).expand_as(x))
    return torch.where(plan.swap_mask.unsqueeze(-1), foreign, x)


def same_source_attention(swap_mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1+N, 1+N) bool: True where query and key tokens come from the same image (cls = own)."""
    own = torch.cat([torch.zeros_like(swap_mask[:, :1]), swap_mask], dim=1)  # (B, 1+N)
    return (own.unsqueeze(2) == own.unsqueeze(1)).unsqueeze(1)


@MODELS.register_module(name="TokesPretrainModel")
class TokesPretrainModel(PixelPretrainModel):
    """Token-swap pretraining: encode mixed pairs, reconstruct each base image's pixels."""

    METHOD = "tokes"

    def __init__(
        self,
        arch: str = "vit_base_patch16_224",
        img_size: int = 224,
        swap_ratio: float = 0.5,
        mix_rule: str = "random",
        positions: str = "aligned",
        restrict_attention: bool = False,
        loss_on: str = "swapped",
        aux_weight: float = 0.0,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        norm_pix_loss: bool = True,
        data_preprocessor: dict | None = None,
    ) -> None:
        if not 0.0 < swap_ratio < 1.0:
            raise ValueError(f"swap_ratio must be in (0, 1), got {swap_ratio}")
        for name, value, allowed in (
            ("mix_rule", mix_rule, MIX_RULES), ("positions", positions, POSITIONS), ("loss_on", loss_on, LOSS_ON)
        ):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; expected one of {allowed}")
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        super().__init__(
            arch, img_size, decoder_dim, decoder_depth, decoder_heads, norm_pix_loss, data_preprocessor
        )
        self.swap_ratio = swap_ratio
        self.mix_rule = mix_rule
        self.positions = positions
        self.restrict_attention = restrict_attention
        self.loss_on = loss_on
        self.aux_weight = aux_weight
        self.aux_head = nn.Linear(self.encoder.embed_dim, 1) if aux_weight > 0 else None

    def plan(self, batch: int) -> SwapPlan:
        """This step's swap plan for a per-device batch."""
        noise_slots, noise_perm = self.step_noise(batch, 2)
        return sample_swaps(noise_slots, noise_perm, self.swap_ratio, self.mix_rule, self.positions)

    def forward_mixed(self, imgs: torch.Tensor, plan: SwapPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output (B, 1+N, D) and pixel predictions (B, N, p*p*C) for the mixed pairs."""
        tokens = self.embed_patches(imgs)  # (B, N, D), no position yet
        mixed = self.add_pos_embed(mix_tokens(tokens, plan))  # foreign tokens take their new slot's pos
        attn_mask = same_source_attention(plan.swap_mask) if self.restrict_attention else None
        latent = self.run_encoder(mixed, attn_mask)  # (B, 1+N, D)
        return latent, self.decoder(latent)  # (B, N, p*p*C)

    def loss(self, imgs: torch.Tensor) -> dict[str, torch.Tensor]:
        plan = self.plan(imgs.shape[0])
        latent, pred = self.forward_mixed(imgs, plan)
        target = self.targets(imgs)  # the base image's pixels at every slot
        mask = plan.swap_mask if self.loss_on == "swapped" else None
        losses = {"loss": masked_patch_loss(pred, target, mask)}
        if self.aux_head is not None:
            logits = self.aux_head(latent[:, 1:]).squeeze(-1).float()  # (B, N)
            aux = F.binary_cross_entropy_with_logits(logits, plan.swap_mask.float())
            losses["loss_aux"] = self.aux_weight * aux
        losses["swap_frac"] = plan.swap_mask.float().mean().detach()
        return losses

    def reconstruct(self, imgs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predictions for visualisation: pred, the swap plan's mask and the mixed pixel input."""
        plan = self.plan(imgs.shape[0])
        _, pred = self.forward_mixed(imgs, plan)
        mixed_pixels = unpatchify(mix_tokens(patchify(imgs, self.patch_size), plan), self.patch_size, self.grid_hw)
        return {"pred": pred, "mask": plan.swap_mask, "input": mixed_pixels}
