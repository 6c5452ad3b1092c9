"""Hooks that make run checkpoints self-describing and loadable without unpickling code objects.

mmengine 0.10.7 stores `HistoryBuffer` objects (numpy arrays inside) in its checkpoints, which
`torch.load(weights_only=True)` rejects (design.md section 2). `PretrainCheckpointHook` stores the
message hub as plain lists/numbers instead and rebuilds the buffers when a checkpoint is loaded,
so resume and export both load with `weights_only=True`; it also records the encoder's
provenance (method, arch, img_size, epochs, images seen, config hash) under meta['tokes_bench'].
"""

from __future__ import annotations

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from tokes_bench.results.records import config_hash

_BUFFER_TAG = "__history_buffer__"


def _plain(value):
    """Numbers, strings, tensors, lists and dicts as weights_only-safe plain values."""
    if isinstance(value, HistoryBuffer):
        log, count = value.data
        return {
            _BUFFER_TAG: True,
            "log_history": [float(v) for v in log],
            "count_history": [float(v) for v in count],
            "max_length": int(value.max_length),
        }
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _restore(value):
    """Inverse of `_plain` for the message hub: tagged dicts back to HistoryBuffer."""
    if isinstance(value, dict):
        if value.get(_BUFFER_TAG):
            return HistoryBuffer(value["log_history"], value["count_history"], value["max_length"])
        return {k: _restore(v) for k, v in value.items()}
    return value


def provenance(runner, epoch: int, iters: int) -> dict:
    """What an exported encoder records about the run that produced it."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    loader = runner.cfg.train_dataloader
    return {
        "method": model.METHOD,
        "arch": model.arch,
        "img_size": int(model.img_size),
        "epochs": int(epoch),
        "iters": int(iters),
        "images_seen": int(iters) * int(loader.batch_size) * int(runner.world_size),
        "config_hash": config_hash(runner.cfg.pretty_text),
    }


@HOOKS.register_module(name="PretrainCheckpointHook")
class PretrainCheckpointHook(Hook):
    """Plain (weights_only-loadable) message hub + provenance meta in every checkpoint."""

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint["message_hub"] = _plain(checkpoint["message_hub"])
        meta = checkpoint["meta"]
        meta["tokes_bench"] = provenance(runner, meta["epoch"], meta["iter"])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if "message_hub" in checkpoint:
            checkpoint["message_hub"] = _restore(checkpoint["message_hub"])


def load_run_checkpoint(path) -> dict:
    """A run checkpoint (mmengine .pth written with PretrainCheckpointHook), weights_only=True."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError/RuntimeError variants
        raise ValueError(f"{path}: cannot be loaded with weights_only=True ({str(e).splitlines()[0]})") from e
