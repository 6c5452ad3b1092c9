"""`pretrain(config, work_dir)`: load and check a config, then train it with mmengine's Runner.

Beyond mmengine this wrapper: validates option names; writes the embedded digits for demo
configs; sets lr = blr x effective batch / 256 (MAE's rule, accumulation included); picks
autocast (`amp` = auto | bf16 | fp16 | none); initialises a gloo process group for CPU
`torchrun --launcher pytorch` runs (mmengine would call torch.cuda.set_device); saves
checkpoints atomically; reports a non-finite loss with the last good checkpoint; and exports
`work_dir/encoder.safetensors` at the end.
"""

from __future__ import annotations

import fcntl
import inspect
import os
from pathlib import Path

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.registry import MODELS
from mmengine.runner import Runner

import tokes_bench.pretrain  # noqa: F401  (registers models, datasets, hooks)
from tokes_bench.data.digits import write_digits_imagefolder
from tokes_bench.engine import apply_launcher, init_distributed, parse_cfg_options
from tokes_bench.models.vit import ENCODER_ARCHS
from tokes_bench.pretrain.base import NonFiniteLossError

AMP_CHOICES = ("auto", "bf16", "fp16", "none")


class PretrainRunner(Runner):
    """mmengine Runner that writes checkpoints atomically and resumes only from its own work dir."""

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        tmp = f".{filename}.tmp"
        super().save_checkpoint(out_dir, tmp, *args, **kwargs)
        if is_main_process():
            os.replace(os.path.join(out_dir, tmp), os.path.join(out_dir, filename))

    def resume(self, filename: str, *args, **kwargs) -> None:
        own = Path(self.work_dir).resolve()
        if own not in Path(filename).resolve().parents:
            raise ValueError(
                f"refusing to resume from {filename}: only checkpoints inside the run's work dir {own} "
                f"can be resumed (start from other weights with load_from)"
            )
        super().resume(filename, *args, **kwargs)


def _check_options(cfg: Config, options: dict, source: str) -> None:
    """Every overridden key must exist in the config, except model options (checked by signature)."""
    for key in options:
        parts = key.split(".")
        if parts[0] == "model" and len(parts) == 2:
            continue
        node = cfg.to_dict()
        for depth, part in enumerate(parts):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:depth]) or "<top level>"
                known = sorted(node) if isinstance(node, dict) else type(node).__name__
                raise KeyError(f"unknown config key {key!r} in {source}; keys at {where}: {known}")
            node = node[part]


def _check_model(cfg: Config, source: str) -> None:
    """Model options must be arguments of the registered model class."""
    model_type = cfg.model.get("type")
    cls = MODELS.get(model_type)
    if cls is None:
        raise KeyError(f"{source}: model type {model_type!r} is not registered")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(cfg.model) - accepted - {"type"})
    if unknown:
        raise KeyError(f"{source}: unknown model option(s) {unknown} for {model_type}; accepted: {sorted(accepted)}")
    arch = cfg.model.get("arch")
    if arch is not None and arch not in ENCODER_ARCHS:
        raise ValueError(
            f"{source}: unknown encoder arch {arch!r} (model.arch); expected one of {sorted(ENCODER_ARCHS)}"
        )


def load_config(config_path: str | os.PathLike, cfg_options: dict | list[str] | None = None) -> Config:
    """Read a pretraining config and apply `cfg_options` (dict or `k=v` strings), with key checks."""
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} does not exist")
    cfg = Config.fromfile(str(path))
    options = parse_cfg_options(cfg_options) if isinstance(cfg_options, list) else dict(cfg_options or {})
    _check_options(cfg, options, f"--cfg-options for {path}")
    cfg.merge_from_dict(options)
    _check_model(cfg, str(path))
    if cfg.get("amp", "auto") not in AMP_CHOICES:
        raise ValueError(f"{path}: amp is {cfg.amp!r}, expected one of {AMP_CHOICES}")
    return cfg


def _prepare_demo_data(cfg: Config, work_dir: Path) -> None:
    """Write the embedded digits once (file lock: several ranks may start together)."""
    spec = cfg.get("demo_digits")
    if not spec:
        return
    root = Path(cfg.get("data_root") or work_dir / "data" / "digits")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_digits_imagefolder(root, size=int(spec.get("size", 64)), seed=int(spec.get("seed", 0)))
    cfg.data_root = str(root)


def _finalise(cfg: Config, work_dir: Path, launcher: str, world: int) -> None:
    """Resolve the values that depend on the machine: data root, lr, amp, DDP wrapper."""
    dataset = cfg.train_dataloader.dataset
    if dataset.get("data_root") is None:
        dataset.data_root = cfg.get("data_root")
    optim = cfg.optim_wrapper
    eff_batch = int(cfg.train_dataloader.batch_size) * world * int(optim.get("accumulative_counts", 1))
    if optim.optimizer.get("lr") is None:
        optim.optimizer.lr = float(cfg.blr) * eff_batch / 256
    amp = cfg.get("amp", "auto")
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "none"
    if amp != "none":
        optim.type = "AmpOptimWrapper"
        optim.dtype = "bfloat16" if amp == "bf16" else "float16"
    apply_launcher(cfg, launcher)
    cfg.work_dir = str(work_dir)
    cfg.effective_batch = eff_batch


def last_checkpoint(work_dir: str | os.PathLike) -> Path | None:
    """The checkpoint mmengine's `last_checkpoint` file points to, if any."""
    marker = Path(work_dir) / "last_checkpoint"
    if not marker.is_file():
        return None
    path = Path(marker.read_text().strip())
    return path if path.is_file() else None


def pretrain(
    config_path: str | os.PathLike,
    work_dir: str | os.PathLike | None = None,
    cfg_options: dict | list[str] | None = None,
    resume: bool = False,
    launcher: str = "none",
) -> Path:
    """Train `config_path` into `work_dir` (default work_dirs/<config name>); return the last checkpoint.

    Also writes `work_dir/encoder.safetensors` (the exported encoder of the last checkpoint).
    """
    cfg = load_config(config_path, cfg_options)
    work_dir = Path(work_dir or cfg.get("work_dir") or Path("work_dirs") / Path(config_path).stem).resolve()
    world = init_distributed(launcher)
    _prepare_demo_data(cfg, work_dir)
    _finalise(cfg, work_dir, launcher, world)
    cfg.resume = bool(resume)
    runner = PretrainRunner.from_cfg(cfg)
    runner.logger.info(
        f"lr = {cfg.optim_wrapper.optimizer.lr:.3e} (blr {cfg.blr} x effective batch {cfg.effective_batch} / 256), "
        f"optim wrapper {cfg.optim_wrapper.type}"
    )
    try:
        runner.train()
    except NonFiniteLossError as e:
        good = last_checkpoint(work_dir)
        kept = f"last good checkpoint: {good}" if good else "no checkpoint was saved before it"
        raise NonFiniteLossError(f"{e}; {kept}") from e
    ckpt = last_checkpoint(work_dir)
    if ckpt is None:
        raise RuntimeError(f"training finished but {work_dir} has no checkpoint (is CheckpointHook disabled?)")
    if is_main_process():
        from tokes_bench.pretrain.export import export_encoder

        export_encoder(ckpt, work_dir / "encoder.safetensors")
    if torch_dist.is_initialized():
        torch_dist.barrier()
    return ckpt
