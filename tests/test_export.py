"""Export: run checkpoints and users' MAE / timm / mmpretrain checkpoints -> the shared encoder format."""

from __future__ import annotations

import argparse

import pytest
import timm
import torch
from safetensors.torch import save_file

from tokes_bench.cli import main
from tokes_bench.models.encoder_io import load_encoder, read_encoder_file
from tokes_bench.models.vit import build_encoder
from tokes_bench.pretrain.export import convert_checkpoint, export_encoder

ARCH = "vit_tiny_patch16_224"


class NotATensor:
    """Stands for arbitrary pickled code in a checkpoint."""


@pytest.fixture(scope="module")
def timm_sd():
    torch.manual_seed(0)
    return {k: v.clone() for k, v in build_encoder(ARCH).state_dict().items()}


def _to_mm(sd: dict) -> dict:
    """timm names -> mmpretrain VisionTransformer names, written out per key family."""
    out = {}
    for k, v in sd.items():
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            rest = (rest.replace("norm1", "ln1").replace("norm2", "ln2")
                    .replace("mlp.fc1", "ffn.layers.0.0").replace("mlp.fc2", "ffn.layers.1"))
            k = f"layers.{i}.{rest}"
        elif k.startswith("norm."):
            k = "ln1." + k[5:]
        elif k.startswith("patch_embed.proj."):
            k = "patch_embed.projection." + k[len("patch_embed.proj."):]
        out["backbone." + k] = v
    return out


def _check_strict_timm(path, sd):
    weights, meta = read_encoder_file(path)
    model = timm.create_model(meta["arch"], num_classes=0, pretrained=False)
    model.load_state_dict(weights, strict=True)
    for k, v in sd.items():
        assert torch.equal(weights[k], v), k
    return meta


def test_official_mae_checkpoint(tmp_path, timm_sd, capsys):
    ckpt = {
        "model": {
            **timm_sd,
            "mask_token": torch.zeros(1, 1, 512),
            "decoder_embed.weight": torch.zeros(512, 192),
            "decoder_pos_embed": torch.zeros(1, 197, 512),
            "decoder_blocks.0.norm1.weight": torch.ones(512),
            "decoder_pred.weight": torch.zeros(768, 512),
        },
        "epoch": 799,
        "args": argparse.Namespace(model="mae_vit_tiny_patch16", norm_pix_loss=True),
    }
    src = tmp_path / "checkpoint-799.pth"
    torch.save(ckpt, src)
    out = tmp_path / "mae.safetensors"
    assert main(["export", str(src), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dropped 5 keys" in printed and "decoder_pred.weight" in printed and "mask_token" in printed
    meta = _check_strict_timm(out, timm_sd)
    assert meta["method"] == "mae" and meta["source_format"] == "mae" and meta["arch"] == ARCH


def test_mmpretrain_checkpoint(tmp_path, timm_sd):
    sd = {**_to_mm(timm_sd), "neck.mask_token": torch.zeros(1, 1, 512),
          "neck.decoder_pred.weight": torch.zeros(768, 512), "head.loss.weight": torch.ones(1)}
    src = tmp_path / "mmpretrain_mae.pth"
    torch.save({"meta": {"epoch": 400}, "state_dict": sd}, src)
    conv = convert_checkpoint(src)
    assert conv.source_format == "mmpretrain" and conv.arch == ARCH
    assert sorted(conv.dropped) == ["head.loss.weight", "neck.decoder_pred.weight", "neck.mask_token"]
    _check_strict_timm(export_encoder(src, tmp_path / "mm.safetensors", method="mae"), timm_sd)


def test_timm_safetensors_with_head(tmp_path, timm_sd):
    src = tmp_path / "vit_tiny.safetensors"
    save_file({**timm_sd, "head.weight": torch.zeros(1000, 192), "head.bias": torch.zeros(1000)}, str(src))
    conv = convert_checkpoint(src)
    assert conv.dropped == ["head.bias", "head.weight"] and conv.metadata["method"] == "other"
    meta = _check_strict_timm(export_encoder(src, tmp_path / "t.safetensors"), timm_sd)
    model, info = load_encoder(str(tmp_path / "t.safetensors"), img_size=224)
    assert info.arch == ARCH and meta["img_size"] == "224"


def test_fine_tuned_global_pool_checkpoint_uses_fc_norm(tmp_path, timm_sd):
    sd = {("fc_norm." + k[5:] if k.startswith("norm.") else k): v for k, v in timm_sd.items()}
    src = tmp_path / "finetuned.pth"
    torch.save({"model": sd}, src)
    conv = convert_checkpoint(src)
    assert torch.equal(conv.weights["norm.weight"], timm_sd["norm.weight"]) and conv.notes


def test_non_vit_and_unsafe_checkpoints_are_clear_errors(tmp_path, timm_sd):
    resnet = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}, resnet)
    with pytest.raises(ValueError, match="not a ViT encoder checkpoint.*missing"):
        convert_checkpoint(resnet)
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": timm_sd, "extra": NotATensor()}, pickled)
    with pytest.raises(ValueError, match="weights_only=True"):
        convert_checkpoint(pickled)
    variant = tmp_path / "qknorm.pth"
    torch.save({**timm_sd, "blocks.0.attn.q_norm.weight": torch.ones(64)}, variant)
    with pytest.raises(ValueError, match="plain ViT encoder does not have.*q_norm"):
        convert_checkpoint(variant)
    with pytest.raises(ValueError, match="not the requested arch 'vit_small_patch16_224'"):
        convert_checkpoint(_save(tmp_path, timm_sd), "vit_small_patch16_224")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_checkpoint(tmp_path / "missing.pth")


def _save(tmp_path, sd):
    path = tmp_path / "plain.pth"
    torch.save(sd, path)
    return path
