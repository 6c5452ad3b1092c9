"""Convert a checkpoint to the exported-encoder format (safetensors, timm keys, provenance metadata).

Sources: this tool's run checkpoints (mmengine .pth with meta['tokes_bench']), official MAE
`.pth` (`{'model': ...}`, timm names + decoder), timm `.safetensors`/`.pth`, and mmpretrain
checkpoints (`backbone.` prefix, mm names). Everything loads with `weights_only=True` or as
safetensors; keys outside the encoder (decoder, mask token, heads, necks) are dropped and
reported; anything that is not a plain ViT of a known arch is a clear error. The position
embedding keeps its training grid (metadata `img_size`); `load_encoder` resamples it on use.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from tokes_bench.models.encoder_io import file_sha256, save_encoder
from tokes_bench.models.vit import ENCODER_ARCHS, build_encoder
from tokes_bench.results.records import METHODS

# Prefixes of weights that belong to pretraining heads, not to the encoder.
DROPPABLE = re.compile(r"^(decoder|mask_token|head|fc_norm|neck|aux_head|target_generator|data_preprocessor)")
REQUIRED = ("cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight")
_MM_RENAMES = (
    ("patch_embed.projection.", "patch_embed.proj."),
    (".ffn.layers.0.0.", ".mlp.fc1."),
    (".ffn.layers.1.", ".mlp.fc2."),
    (".ln1.", ".norm1."),
    (".ln2.", ".norm2."),
)


@dataclass
class ConvertedEncoder:
    """Encoder weights in timm names plus what the conversion did."""

    weights: dict[str, torch.Tensor]
    arch: str
    source_format: str
    metadata: dict[str, str]
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _load_any(path: Path) -> tuple[dict, dict]:
    """(checkpoint object, safetensors metadata) without unpickling anything but plain data."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        return load_file(str(path)), meta
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True), {}
    except Exception as e:  # UnpicklingError and RuntimeError variants
        raise ValueError(
            f"{path}: cannot be loaded with weights_only=True ({str(e).splitlines()[0]}); only plain "
            f"tensors/dicts are accepted (re-save the state dict with torch.save(model.state_dict(), ...))"
        ) from e


def _from_mm(sd: dict) -> dict:
    """mmpretrain ViT names -> timm names (keys already without `backbone.`)."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^layers\.", "blocks.", k)
        k = re.sub(r"^ln1\.", "norm.", k)
        for a, b in _MM_RENAMES:
            k = k.replace(a, b)
        out[k] = v
    return out


def _unwrap(ckpt: dict, path: Path) -> tuple[dict, list[str], str, dict]:
    """(timm-named candidate encoder weights, keys known not to be encoder, format, provenance)."""
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    if "tokes_bench" in meta and "state_dict" in ckpt:
        fmt, prefix, sd, prov = "tokes-bench-run", "encoder.", ckpt["state_dict"], meta["tokes_bench"]
    else:
        sd, prov = ckpt, {}
        for key in ("model", "state_dict"):
            if isinstance(ckpt.get(key), dict):
                sd = ckpt[key]
                break
        if any(k.startswith("backbone.") for k in sd):
            fmt, prefix = "mmpretrain", "backbone."
        elif any(k.startswith("encoder.") for k in sd):
            fmt, prefix = "tokes-bench-model", "encoder."
        else:
            fmt, prefix = ("mae" if any(k.startswith("decoder_") for k in sd) else "timm"), ""
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)][:5]
    if bad:
        raise ValueError(f"{path}: not a state dict of tensors (non-tensor entries {bad})")
    enc = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    extra = sorted(k for k in sd if not k.startswith(prefix))
    return (_from_mm(enc) if fmt == "mmpretrain" else enc), extra, fmt, prov


def infer_arch(sd: dict, path: Path) -> str:
    """The ENCODER_ARCHS entry matching patch size, width and depth of a timm-named state dict."""
    missing = [k for k in REQUIRED if k not in sd]
    if missing:
        sample = sorted(sd)[:6]
        raise ValueError(f"{path}: not a ViT encoder checkpoint (missing {missing}; first keys {sample})")
    width = sd["cls_token"].shape[-1]
    patch = sd["patch_embed.proj.weight"].shape[-1]
    depth = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    for arch, spec in ENCODER_ARCHS.items():
        if (spec["patch_size"], spec["embed_dim"], spec["depth"]) == (patch, width, depth):
            return arch
    raise ValueError(
        f"{path}: ViT with patch {patch}, width {width}, depth {depth} matches none of {sorted(ENCODER_ARCHS)}"
    )


def _img_size(sd: dict, path: Path) -> int:
    """Training resolution implied by a square pos_embed grid (with or without a cls row)."""
    n = sd["pos_embed"].shape[1]
    for tokens in (n - 1, n):
        side = int(round(tokens**0.5))
        if side * side == tokens:
            return side * sd["patch_embed.proj.weight"].shape[-1]
    raise ValueError(f"{path}: pos_embed has {n} rows, not a square patch grid (+ cls)")


def convert_checkpoint(src: str | os.PathLike, arch: str | None = None, method: str | None = None) -> ConvertedEncoder:
    """Read any supported checkpoint and return encoder weights that load strictly into `arch`."""
    if method is not None and method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt, st_meta = _load_any(path)
    sd, extra, fmt, prov = _unwrap(ckpt, path)
    notes = []
    if "norm.weight" not in sd and "fc_norm.weight" in sd:
        sd = {("norm." + k[8:] if k.startswith("fc_norm.") else k): v for k, v in sd.items()}
        notes.append("fc_norm (global-pool fine-tune) used as the final norm")
    found = infer_arch(sd, path)
    if arch is not None and arch != found:
        raise ValueError(f"{path}: weights are {found}, not the requested arch {arch!r}")
    model = build_encoder(found, img_size=_img_size(sd, path))
    own = model.state_dict()
    dropped = sorted(k for k in sd if k not in own)
    unexpected = [k for k in dropped if not DROPPABLE.match(k)]
    if unexpected:
        raise ValueError(f"{path}: keys that a plain ViT encoder does not have: {unexpected[:8]}")
    weights = {k: v for k, v in sd.items() if k in own}
    pe = weights["pos_embed"]
    if pe.ndim == 3 and pe.shape[1] == model.patch_embed.num_patches:
        weights["pos_embed"] = torch.cat([torch.zeros_like(pe[:, :1]), pe], dim=1)
        notes.append("pos_embed had no cls row; a zero row was added")
    result = model.load_state_dict(weights, strict=False)
    if result.missing_keys:
        raise ValueError(f"{path}: encoder weights missing for {found}: {result.missing_keys[:8]}")
    if fmt == "tokes-bench-run":
        meta = {k: str(v) for k, v in prov.items()}
    else:
        guessed = "mae" if fmt == "mae" or any("decoder_pred" in k for k in extra) else "other"
        meta = {"method": method or st_meta.get("method") or guessed}
        if "epochs" in st_meta:
            meta["epochs"] = st_meta["epochs"]
    if method is not None:
        meta["method"] = method
    meta.update(
        img_size=model.patch_embed.img_size[0], arch=found, source_format=fmt, source_file=path.name,
        source_sha256=file_sha256(path),
    )
    return ConvertedEncoder(weights, found, fmt, meta, extra + dropped, notes)


def export_encoder(
    src: str | os.PathLike, out: str | os.PathLike, arch: str | None = None, method: str | None = None
) -> Path:
    """Convert `src` (see module doc) and write `out` atomically; return `out`."""
    conv = convert_checkpoint(src, arch, method)
    return save_encoder(out, conv.weights, conv.metadata)
