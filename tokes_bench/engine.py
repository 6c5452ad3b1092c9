"""mmengine glue shared by every training entry point (pretraining, fine-tuning): launchers, overrides."""

from __future__ import annotations

import os

LAUNCHERS = ("none", "pytorch", "slurm")


def parse_cfg_options(items: list[str] | None) -> dict:
    """`--cfg-options k=v ...` to a dict with mmengine's value syntax (numbers, booleans, None, lists, tuples)."""
    if not items:
        return {}
    import argparse

    from mmengine.config import DictAction

    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--cfg-options item {item!r} is not of the form key=value")
    parser = argparse.ArgumentParser()
    parser.add_argument("--o", nargs="+", action=DictAction)
    return dict(parser.parse_args(["--o", *items]).o or {})


def init_distributed(launcher: str) -> int:
    """Return the world size; for CPU `torchrun` runs make the gloo group here (mmengine would call cuda.set_device)."""
    import torch
    import torch.distributed as torch_dist

    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; expected one of {LAUNCHERS}")
    if launcher == "none":
        return 1
    if launcher == "pytorch" and not torch.cuda.is_available():
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(backend="gloo")
        return torch_dist.get_world_size()
    return int(os.environ.get("SLURM_NTASKS" if launcher == "slurm" else "WORLD_SIZE", "1"))


def apply_launcher(cfg, launcher: str) -> None:
    """Set `cfg.launcher`, and on CPU torchrun wrap the model in MMDistributedDataParallel without devices."""
    import torch

    cfg.launcher = launcher
    if launcher == "pytorch" and not torch.cuda.is_available():
        cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False)
