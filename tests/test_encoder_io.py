"""Encoder build and the exported-encoder format shared by every adapter."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from tokes_bench.models import build_encoder, load_encoder, save_encoder, sincos_pos_embed_2d


def test_sincos_matches_mae_formula_by_hand() -> None:
    pe = sincos_pos_embed_2d(8, (2, 3), cls_token=True)[0]
    assert pe.shape == (7, 8) and torch.all(pe[0] == 0)
    # token for row h=1, column w=2 is index 1 + 1*3 + 2; dims 0..3 encode w, 4..7 encode h
    omega = 1.0 / 10000 ** (np.arange(2) / 2.0)
    w, h = 2.0, 1.0
    want = np.concatenate([np.sin(w * omega), np.cos(w * omega), np.sin(h * omega), np.cos(h * omega)])
    np.testing.assert_allclose(pe[1 + 3 + 2].numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("arch, tokens", [("vit_tiny_patch16_224", 197), ("vit_small_patch16_224", 197)])
def test_encoder_is_timm_compatible(arch: str, tokens: int, tmp_path) -> None:
    enc = build_encoder(arch)
    assert enc.pos_embed.shape[1] == tokens and not enc.pos_embed.requires_grad
    path = save_encoder(tmp_path / "e.safetensors", enc.state_dict(), {"arch": arch, "method": "mae", "epochs": 5})
    from safetensors.torch import load_file

    timm.create_model(arch, num_classes=0).load_state_dict(load_file(str(path)), strict=True)
    model, info = load_encoder(str(path), img_size=64)
    assert info.method == "mae" and info.pretrain_epochs == 5 and len(info.sha256) == 64
    assert model.pos_embed.shape[1] == 1 + 16


def test_load_encoder_errors_are_clear(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_encoder(str(tmp_path / "missing.safetensors"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_encoder(str(bad))
    with pytest.raises(ValueError, match="config expects"):
        load_encoder("random:vit_tiny_patch16_224", expected_arch="vit_small_patch16_224")
    with pytest.raises(ValueError, match="unknown encoder arch"):
        load_encoder("random:resnet50")
