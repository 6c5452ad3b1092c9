"""Read and write encoder checkpoints: safetensors with timm key names and provenance metadata."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors
from timm.layers import resample_abs_pos_embed

from tokes_bench.models.vit import ENCODER_ARCHS, build_encoder
from tokes_bench.results.atomic import atomic_write_bytes

FORMAT = "tokes-bench-encoder/1"
RANDOM_PREFIX = "random:"
# Metadata keys every exported encoder carries (all values are strings, as safetensors requires).
REQUIRED_METADATA = ("format", "arch", "method")


@dataclass
class EncoderInfo:
    """Where an encoder came from: what leaderboards use to tell runs apart."""

    arch: str
    method: str
    path: str
    sha256: str
    pretrain_epochs: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_encoder(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], metadata: dict) -> Path:
    """Write encoder weights (timm keys) and metadata to `path` atomically (temp file + rename)."""
    meta = {"format": FORMAT, **{k: str(v) for k, v in metadata.items() if v is not None}}
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ValueError(f"encoder metadata is missing {missing}; got keys {sorted(meta)}")
    if meta["arch"] not in ENCODER_ARCHS:
        raise ValueError(f"metadata arch {meta['arch']!r} is not one of {sorted(ENCODER_ARCHS)}")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    return atomic_write_bytes(path, save_tensors(tensors, metadata=meta))


def read_encoder_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load weights and metadata of an exported encoder; never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path}: expected an exported encoder (.safetensors); convert other checkpoints with "
            f"`tokes-bench export {path} -o encoder.safetensors`"
        )
    try:
        weights = load_file(str(path))

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("arch") not in ENCODER_ARCHS:
        raise ValueError(
            f"{path}: metadata 'arch' is {meta.get('arch')!r}, expected one of {sorted(ENCODER_ARCHS)}"
        )
    return weights, meta


def resize_pos_embed(weights: dict[str, torch.Tensor], grid_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Resample `pos_embed` (cls row kept) to a new patch grid with timm's bicubic resampling."""
    pe = weights["pos_embed"]
    if pe.shape[1] - 1 == grid_hw[0] * grid_hw[1]:
        return weights
    out = dict(weights)
    out["pos_embed"] = resample_abs_pos_embed(pe, new_size=list(grid_hw), num_prefix_tokens=1)
    return out


def load_encoder(
    spec: str, img_size: int | tuple[int, int] = 224, expected_arch: str | None = None, **build_kwargs
):
    """Build and load an encoder from an exported `.safetensors` file or `random:<arch>`.

    Returns (model, EncoderInfo). `expected_arch` guards against evaluating with a config made for
    another arch. Position embeddings are resampled when `img_size` differs from the checkpoint's.
    """
    if spec.startswith(RANDOM_PREFIX):
        arch = spec[len(RANDOM_PREFIX) :]
        if expected_arch is not None and arch != expected_arch:
            raise ValueError(f"encoder {spec!r} has arch {arch!r} but the config expects {expected_arch!r}")
        model = build_encoder(arch, img_size=img_size, **build_kwargs)
        info = EncoderInfo(
            arch=arch,
            method="random",
            path=spec,
            sha256="",
            pretrain_epochs=0,
            metadata={"format": FORMAT, "arch": arch, "method": "random"},
        )
        return model, info
    weights, meta = read_encoder_file(spec)
    arch = meta["arch"]
    if expected_arch is not None and arch != expected_arch:
        raise ValueError(f"{spec}: encoder arch is {arch!r} but the config expects {expected_arch!r}")
    model = build_encoder(arch, img_size=img_size, **build_kwargs)
    weights = resize_pos_embed(weights, tuple(model.patch_embed.grid_size))
    own = model.state_dict()
    if model.global_pool == "avg" and "fc_norm.weight" in own and "norm.weight" in weights:
        # MAE fine-tuning with average pooling moves the final norm after the pool.
        weights = {("fc_norm." + k[5:] if k.startswith("norm.") else k): v for k, v in weights.items()}
    result = model.load_state_dict(weights, strict=False)
    head_only = [k for k in result.missing_keys if k.startswith("head.")]
    missing = [k for k in result.missing_keys if k not in head_only]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{spec}: weights do not match {arch}: missing {missing[:8]}, unexpected {result.unexpected_keys[:8]}"
        )
    epochs = meta.get("epochs")
    info = EncoderInfo(
        arch=arch,
        method=meta.get("method", "other"),
        path=str(spec),
        sha256=file_sha256(spec),
        pretrain_epochs=int(float(epochs)) if epochs not in (None, "", "None") else None,
        metadata=meta,
    )
    return model, info
