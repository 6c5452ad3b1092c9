"""TOKES mixing/loss and MAE masking/loss against hand-built cases and the official formulas."""

from __future__ import annotations

import pytest
import torch

from tokes_bench.models.patchify import patchify, pixel_targets
from tokes_bench.models.vit import ENCODER_ARCHS
from tokes_bench.pretrain import base as pretrain_base
from tokes_bench.pretrain.base import masked_patch_loss
from tokes_bench.pretrain.mae import MaePretrainModel, random_masking
from tokes_bench.pretrain.tokes import (
    TokesPretrainModel,
    mix_tokens,
    same_source_attention,
    sample_swaps,
)

TINY = dict(arch="vit_tiny_patch16_224", img_size=32, decoder_dim=32, decoder_depth=1, decoder_heads=2)


def _tokens(b: int = 4, n: int = 4) -> torch.Tensor:
    """Token (image i, slot s) = [10 i + s, -(10 i + s)]: every token is recognisable."""
    ids = torch.arange(b).view(b, 1) * 10 + torch.arange(n).view(1, n)
    return torch.stack([ids, -ids], dim=-1).float()


def _ids(mixed: torch.Tensor) -> list[list[int]]:
    return mixed[..., 0].long().tolist()


# Row 0's noise picks slots {0, 2} for the pair (0, 2); row 1's picks {1, 3} for the pair (1, 3).
NOISE = torch.tensor([[0.1, 0.9, 0.2, 0.8], [0.7, 0.3, 0.6, 0.05], [0.5] * 4, [0.5] * 4])


def test_aligned_swap_exchanges_same_slots_in_both_directions():
    plan = sample_swaps(NOISE, torch.rand(4, 4), ratio=0.5, rule="random", positions="aligned")
    assert plan.partner.tolist() == [2, 3, 0, 1]
    assert _ids(mix_tokens(_tokens(), plan)) == [
        [20, 1, 22, 3],  # image 0 gets image 2's tokens at slots 0 and 2
        [10, 31, 12, 33],  # image 1 gets image 3's tokens at slots 1 and 3
        [0, 21, 2, 23],  # image 2 gets image 0's tokens at the same slots (the other direction)
        [30, 11, 32, 13],
    ]


def test_shuffled_swap_brings_partner_tokens_from_other_slots():
    # Within each row's swapped slots, the partner slot order follows perm noise ascending.
    perm = torch.tensor([[0.7, 0.0, 0.3, 0.0], [0.0, 0.2, 0.0, 0.9], [0.4, 0.0, 0.6, 0.0], [0.0, 0.8, 0.0, 0.1]])
    plan = sample_swaps(NOISE, perm, ratio=0.5, rule="random", positions="shuffled")
    assert _ids(mix_tokens(_tokens(), plan)) == [
        [22, 1, 20, 3],  # slots (0, 2) receive image 2's slots (2, 0)
        [10, 31, 12, 33],  # perm keeps the order for row 1
        [0, 21, 2, 23],
        [30, 13, 32, 11],  # slots (1, 3) receive image 1's slots (3, 1)
    ]
    # The exchanged tokens are the same set as in the aligned swap: only their slots moved.
    assert plan.src_index[0].tolist() == [2, 1, 0, 3]


def test_bernoulli_rule_and_odd_batch():
    noise = torch.tensor([[0.1, 0.45, 0.6, 0.9]] * 2)
    plan = sample_swaps(noise, torch.rand(2, 4), ratio=0.5, rule="bernoulli")
    assert plan.swap_mask.tolist() == [[True, True, False, False]] * 2
    with pytest.raises(ValueError, match="must be even, got 3"):
        sample_swaps(torch.rand(3, 4), torch.rand(3, 4), 0.5)
    with pytest.raises(ValueError, match="unknown positions 'diagonal'"):
        sample_swaps(noise, noise, 0.5, positions="diagonal")


def test_same_source_attention_mask():
    mask = torch.tensor([[False, True, True]])
    allowed = same_source_attention(mask)[0, 0]
    # order: cls (own), slot0 (own), slot1 (foreign), slot2 (foreign)
    assert allowed.int().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]


def _hand_norm_pix(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """Targets written out independently: loop over patches, (row, col, channel) order, unbiased var."""
    b, c, h, w = imgs.shape
    out = torch.empty(b, (h // p) * (w // p), p * p * c)
    for i in range(b):
        for r in range(h // p):
            for q in range(w // p):
                patch = imgs[i, :, r * p : (r + 1) * p, q * p : (q + 1) * p].permute(1, 2, 0).reshape(-1)
                m = patch.sum() / patch.numel()
                v = ((patch - m) ** 2).sum() / (patch.numel() - 1)
                out[i, r * (w // p) + q] = (patch - m) / torch.sqrt(v + 1e-6)
    return out


def test_tokes_loss_is_mse_over_swapped_slots_with_zero_grad_elsewhere(monkeypatch):
    torch.manual_seed(0)
    model = TokesPretrainModel(**TINY)
    imgs = torch.randn(4, 3, 32, 32)
    pred = torch.randn(4, 4, 16 * 16 * 3, requires_grad=True)
    monkeypatch.setattr(model.decoder, "forward", lambda x, ids_restore=None: pred)
    losses = model.loss(imgs)
    plan = model.plan(4)  # same step -> same plan
    target = _hand_norm_pix(imgs, 16)
    per_slot = ((pred.detach() - target) ** 2).mean(-1)
    swapped = plan.swap_mask
    assert swapped.sum() == 8  # 50% of 4 slots x 4 images
    expected = per_slot[swapped].sum() / swapped.sum()
    torch.testing.assert_close(losses["loss"], expected, rtol=1e-5, atol=1e-6)
    losses["loss"].backward()
    assert torch.all(pred.grad[~swapped] == 0)
    assert torch.all(pred.grad[swapped].abs().sum(-1) > 0)


def test_tokes_loss_on_all_and_aux_head():
    torch.manual_seed(0)
    model = TokesPretrainModel(**TINY, loss_on="all", aux_weight=0.5)
    imgs = torch.randn(4, 3, 32, 32)
    losses = model.loss(imgs)
    latent, pred = model.forward_mixed(imgs, model.plan(4))
    expected = ((pred - _hand_norm_pix(imgs, 16)) ** 2).mean()
    torch.testing.assert_close(losses["loss"], expected, rtol=1e-5, atol=1e-6)
    assert losses["loss_aux"] > 0


def test_restricted_attention_hides_foreign_tokens():
    """With restrict_attention, changing the partner image changes nothing at the base image's own slots."""
    torch.manual_seed(0)
    model = TokesPretrainModel(**TINY, restrict_attention=True).eval()
    imgs = torch.randn(4, 3, 32, 32)
    plan = model.plan(4)
    other = imgs.clone()
    other[2] = torch.randn(3, 32, 32)  # image 2 is image 0's partner
    with torch.no_grad():
        a, _ = model.forward_mixed(imgs, plan)
        b, _ = model.forward_mixed(other, plan)
    own = torch.cat([torch.tensor([True]), ~plan.swap_mask[0]])
    torch.testing.assert_close(a[0][own], b[0][own])
    assert not torch.allclose(a[0][~own], b[0][~own])
    model.restrict_attention = False
    with torch.no_grad():
        c, _ = model.forward_mixed(other, plan)
    assert not torch.allclose(a[0][own], c[0][own])


def test_random_masking_matches_hand_case():
    x = torch.arange(4).float().view(1, 4, 1)
    noise = torch.tensor([[0.5, 0.1, 0.9, 0.3]])
    visible, mask, ids_restore = random_masking(x, 0.5, noise)
    assert visible.flatten().tolist() == [1.0, 3.0]  # the two smallest noise values are kept
    assert mask.tolist() == [[1.0, 0.0, 1.0, 0.0]]
    assert ids_restore.tolist() == [[2, 0, 3, 1]]


def _official_mae_loss(imgs, pred, mask, p):
    """facebookresearch/mae forward_loss (norm_pix_loss=True), written out as in models_mae.py."""
    h = w = imgs.shape[2] // p
    x = imgs.reshape(imgs.shape[0], 3, h, p, w, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    target = x.reshape(imgs.shape[0], h * w, p**2 * 3)
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + 1.0e-6) ** 0.5
    loss = (pred - target) ** 2
    loss = loss.mean(dim=-1)
    return (loss * mask).sum() / mask.sum()


def test_mae_loss_equals_official_formula(monkeypatch):
    torch.manual_seed(0)
    model = MaePretrainModel(**TINY)
    imgs = torch.randn(2, 3, 32, 32)
    pred = torch.randn(2, 4, 768)
    monkeypatch.setattr(model.decoder, "forward", lambda x, ids_restore=None: pred)
    loss = model.loss(imgs)["loss"]
    (noise,) = model.step_noise(2, 1)  # loss() does not advance the step: same noise
    _, mask, _ = random_masking(torch.zeros(2, 4, 1), 0.75, noise)
    assert mask.sum() == 6  # 3 of 4 slots masked per image
    torch.testing.assert_close(loss, _official_mae_loss(imgs, pred, mask, 16))
    torch.testing.assert_close(masked_patch_loss(pred, pixel_targets(imgs, 16), mask),
                               _official_mae_loss(imgs, pred, mask, 16))


def test_mae_encoder_sees_visible_tokens_only():
    torch.manual_seed(0)
    model = MaePretrainModel(**TINY)
    seen = []
    model.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model.loss(torch.randn(2, 3, 32, 32))
    assert seen == [torch.Size([2, 1 + 1, 192])]  # cls + 25% of 4 slots


def test_patchify_layout_is_row_col_channel():
    imgs = torch.arange(2 * 3 * 4 * 4).float().view(2, 3, 4, 4)
    patches = patchify(imgs, 2)
    # patch (row 0, col 1) of image 1, first pixel (0, 2): channels 0..2
    assert patches[1, 1, :3].tolist() == [imgs[1, c, 0, 2].item() for c in range(3)]


@pytest.mark.parametrize("arch", sorted(ENCODER_ARCHS))
def test_every_arch_builds_with_right_token_count(arch):
    spec = ENCODER_ARCHS[arch]
    with torch.device("meta"):
        for cls in (TokesPretrainModel, MaePretrainModel):
            model = cls(arch=arch, img_size=224)
            n = (224 // spec["patch_size"]) ** 2
            assert model.num_patches == n
            assert model.encoder.pos_embed.shape == (1, n + 1, spec["embed_dim"])
            assert model.decoder.pos_embed.shape == (1, n + 1, 512)
            assert model.decoder.pred.out_features == spec["patch_size"] ** 2 * 3
            assert len(model.encoder.blocks) == spec["depth"]


@pytest.mark.parametrize("cls", [TokesPretrainModel, MaePretrainModel])
def test_forward_shapes_at_224(cls):
    model = cls(arch="vit_tiny_patch16_224", img_size=224, decoder_dim=64, decoder_depth=1, decoder_heads=2)
    out = model(torch.randn(2, 3, 224, 224), mode="predict")
    assert out["pred"].shape == (2, 196, 768) and out["mask"].shape == (2, 196)
    with pytest.raises(ValueError, match="built for img_size 224"):
        model(torch.randn(2, 3, 64, 64))


def test_rank_rows_equal_the_single_process_draw(monkeypatch):
    """Two ranks with per-device batch 2 draw exactly the rows one process with batch 4 draws."""
    model = MaePretrainModel(**TINY)
    (full,) = model.step_noise(4, 1)
    rows = []
    for rank in (0, 1):
        monkeypatch.setattr(pretrain_base, "dist_rank_world", lambda r=rank: (r, 2))
        rows.append(model.step_noise(2, 1)[0])
    torch.testing.assert_close(rows[0], full[0::2])
    torch.testing.assert_close(rows[1], full[1::2])


def test_invalid_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown loss_on 'masked'"):
        TokesPretrainModel(**TINY, loss_on="masked")
    with pytest.raises(ValueError, match="unknown encoder arch 'vit_giant'"):
        MaePretrainModel(arch="vit_giant", img_size=32)


def test_init_weights_keeps_fixed_sincos_position_embeddings():
    """mmengine's Runner calls model.init_weights(); timm's would replace the sin-cos table with noise."""
    from tokes_bench.models.vit import sincos_pos_embed_2d

    for cls in (TokesPretrainModel, MaePretrainModel):
        model = cls(**TINY)
        model.init_weights()
        torch.testing.assert_close(model.encoder.pos_embed, sincos_pos_embed_2d(192, (2, 2)))
        torch.testing.assert_close(model.decoder.pos_embed, sincos_pos_embed_2d(32, (2, 2)))
        assert not model.encoder.pos_embed.requires_grad
        w = model.encoder.blocks[0].attn.qkv.weight
        bound = (6 / (w.shape[0] + w.shape[1])) ** 0.5  # xavier-uniform (MAE), not timm's std 0.02
        assert w.abs().max() <= bound and w.std() > 0.03
