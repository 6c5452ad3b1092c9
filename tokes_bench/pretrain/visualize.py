"""Reconstruction grids: per image, original | model input (mixed or masked) | reconstruction."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from PIL import Image, ImageDraw
from torchvision.transforms import functional as TF

import tokes_bench.pretrain  # noqa: F401  (registers the models)
from tokes_bench.data.imagefolder import IMG_EXTENSIONS, load_rgb
from tokes_bench.models.patchify import patch_stats, patchify, unpatchify
from tokes_bench.pretrain.hooks import load_run_checkpoint
from tokes_bench.results.atomic import atomic_write_bytes

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def model_from_checkpoint(path: str | os.PathLike):
    """Rebuild the pretraining model of a run checkpoint from the config stored inside it."""
    ckpt = load_run_checkpoint(path)
    text = ckpt.get("meta", {}).get("cfg")
    if not text:
        raise ValueError(f"{path}: not a pretraining run checkpoint (no config in meta)")
    cfg = Config.fromstring(text, file_format=".py")
    model = MODELS.build(cfg.model)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model.eval()


def load_images(folder: str | os.PathLike, num: int, size: int) -> torch.Tensor:
    """`num` images evenly spaced over the sorted paths (so several classes show), resized +
    centre-cropped to `size`, ImageNet-normalised."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
    if len(files) < num:
        raise ValueError(f"{folder} has {len(files)} images, need {num}")
    picked = [files[i * len(files) // num] for i in range(num)]
    imgs = [TF.to_tensor(TF.center_crop(TF.resize(load_rgb(str(f)), size), size)) for f in picked]
    return (torch.stack(imgs) - MEAN) / STD


def _to_pil(img: torch.Tensor, scale: int) -> Image.Image:
    arr = ((img * STD[0] + MEAN[0]).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr)
    return pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)


def visualize(
    checkpoint: str | os.PathLike, images: str | os.PathLike, output: str | os.PathLike, num: int = 8,
    seed: int = 0,
) -> Path:
    """Write a PNG grid (atomically). Reconstructions show predictions at the swapped (masked) slots
    and the original elsewhere; with norm_pix_loss a prediction is de-normalised with its original
    patch's mean/std, as MAE's visualisations do."""
    model = model_from_checkpoint(checkpoint)
    if num < 2 or num % 2:
        raise ValueError(f"--num must be an even number >= 2 (TOKES mixes pairs), got {num}")
    imgs = load_images(images, num, model.img_size)
    model.rng_seed.fill_(seed)
    model.num_steps.zero_()
    with torch.no_grad():
        out = model(imgs, mode="predict")
    pred = out["pred"].float()
    original = patchify(imgs, model.patch_size)
    if model.norm_pix_loss:
        mean, std = patch_stats(original)
        pred = pred * std + mean
    if getattr(model, "loss_on", "swapped") != "all":
        # Only swapped/masked slots are trained: show predictions there, the original elsewhere (as MAE does).
        pred = torch.where(out["mask"].unsqueeze(-1), pred, original)
    recon = unpatchify(pred, model.patch_size, model.grid_hw)
    p = model.patch_size
    scale = max(1, 128 // model.img_size)
    cell = model.img_size * scale
    grid = Image.new("RGB", (3 * cell + 8, num * cell + 2 * (num - 1)), "white")
    for i in range(num):
        row = [_to_pil(imgs[i], scale), _to_pil(out["input"][i], scale), _to_pil(recon[i], scale)]
        draw = ImageDraw.Draw(row[1])
        for slot in torch.nonzero(out["mask"][i]).flatten().tolist():
            r, c = divmod(slot, model.grid_hw[1])
            draw.rectangle([c * p * scale, r * p * scale, (c + 1) * p * scale - 1, (r + 1) * p * scale - 1],
                           outline=(255, 0, 0))
        for j, im in enumerate(row):
            grid.paste(im, (j * (cell + 4), i * (cell + 2)))
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return atomic_write_bytes(output, buf.getvalue())
