"""MAE end-to-end fine-tuning through mmengine's Runner: model, dataset, metric, hooks and config finishing.

Importing this module registers (mmengine root registries): model `TokesViTClassifier`, dataset
`TokesImageFolder`, metric `TokesTopKAccuracy`, hook `TokesLastMetricsHook`, lr scheduler `TokesMAELR`; the layer-decay
optimizer constructor comes from `lr_decay`. Configs load it with `custom_imports`.

The schedule is given by top-level config keys (`epochs`, `warmup_epochs`, `blr`, `min_lr`,
`batch_size`, `accum_iter`, `img_size`) and `finish_config` writes them into `train_cfg`,
`param_scheduler`, the optimizer lr (blr x effective batch / 256, as MAE) and the loaders, so one
override (`--cfg-options epochs=10`) changes every place that depends on it.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS, PARAM_SCHEDULERS
from mmengine.runner import Runner

from tokes_bench.adapters.classification import lr_decay  # noqa: F401  (registers the constructor)
from tokes_bench.adapters.classification.data import fix_timm_posterize
from tokes_bench.adapters.classification.metrics import metric_names, topk_correct
from tokes_bench.adapters.classification.schedule import cosine_lr
from tokes_bench.data.imagefolder import ImageFolderDataset
from tokes_bench.engine import apply_launcher
from tokes_bench.models import load_encoder

# Top-level keys a fine-tune config must define (they drive the derived Runner settings).
SCHEDULE_KEYS = ("arch", "img_size", "epochs", "warmup_epochs", "blr", "min_lr", "batch_size", "accum_iter")


@MODELS.register_module(name="TokesViTClassifier")
class ViTClassifier(BaseModel):
    """An exported encoder + linear head, global average pooling (fc_norm), drop path, mixup/cutmix.

    Loss as MAE's `main_finetune.py`: SoftTargetCrossEntropy when mixup/cutmix is on (labels
    smoothed inside Mixup), else label-smoothing CE, else CE. The head starts at
    trunc_normal(std=2e-5). Position embeddings are trained (no weight decay), as in MAE.
    """

    def __init__(
        self,
        encoder: str,
        num_classes: int,
        arch: str | None = None,
        img_size: int = 224,
        drop_path_rate: float = 0.1,
        global_pool: str = "avg",
        label_smoothing: float = 0.1,
        mixup: dict | None = None,
        head_init_std: float = 2e-5,
        train_pos_embed: bool = True,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from timm.data import Mixup
        from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

        self.encoder, self.info = load_encoder(
            encoder,
            img_size=img_size,
            expected_arch=arch,
            drop_path_rate=drop_path_rate,
            global_pool=global_pool,
            num_classes=num_classes,
        )
        nn.init.trunc_normal_(self.encoder.head.weight, std=head_init_std)
        nn.init.zeros_(self.encoder.head.bias)
        self.encoder.pos_embed.requires_grad_(train_pos_embed)
        self.num_classes = num_classes
        self.mixup = Mixup(**mixup, label_smoothing=label_smoothing, num_classes=num_classes) if mixup else None
        if self.mixup is not None:
            self.criterion = SoftTargetCrossEntropy()
        elif label_smoothing > 0:
            self.criterion = LabelSmoothingCrossEntropy(smoothing=label_smoothing)
        else:
            self.criterion = nn.CrossEntropyLoss()

    def init_weights(self) -> None:
        """Keep the loaded weights. The Runner calls `init_weights()` before training, and mmengine's
        default would call timm's `VisionTransformer.init_weights`, re-randomising the encoder."""

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None, mode: str = "tensor"):
        if mode == "loss":
            targets = labels
            if self.mixup is not None:
                inputs, targets = self.mixup(inputs, labels)
            return {"loss": self.criterion(self.encoder(inputs), targets)}
        logits = self.encoder(inputs)
        if mode == "predict":
            return [{"logits": row, "label": y} for row, y in zip(logits, labels, strict=True)]
        return logits


@DATASETS.register_module(name="TokesImageFolder")
class TransformedImageFolder(ImageFolderDataset):
    """ImageFolder split with a timm `create_transform(**transform)` pipeline (RandAugment, erasing, ...)."""

    def __init__(self, data_root: str, split: str, transform: dict, on_corrupt: str = "fail") -> None:
        from timm.data import create_transform

        fix_timm_posterize()
        super().__init__(data_root, split, transform=create_transform(**transform), on_corrupt=on_corrupt)
        self.metainfo = {"classes": tuple(self.classes)}


@METRICS.register_module(name="TokesTopKAccuracy")
class TopKAccuracy(BaseMetric):
    """top1 (and top5 beyond 5 classes) in percent, from per-sample hits (exact under distributed eval)."""

    default_prefix = ""  # metric names stay "top1" / "top5"

    def process(self, data_batch, data_samples) -> None:
        logits = torch.stack([s["logits"] for s in data_samples]).float().cpu()
        labels = torch.as_tensor([int(s["label"]) for s in data_samples])
        hit1 = topk_correct(logits, labels, 1)
        hit5 = topk_correct(logits, labels, 5)
        self.results.extend(
            (bool(a), bool(b), logits.shape[1]) for a, b in zip(hit1.tolist(), hit5.tolist(), strict=True)
        )

    def compute_metrics(self, results: list) -> dict[str, float]:
        n = len(results)
        out = {"top1": 100.0 * sum(r[0] for r in results) / n}
        if "top5" in metric_names(results[0][2]):
            out["top5"] = 100.0 * sum(r[1] for r in results) / n
        return out


@HOOKS.register_module(name="TokesLastMetricsHook")
class LastMetricsHook(Hook):
    """Keeps the metrics of the latest validation (the train loop validates after its last epoch)."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        self.metrics = dict(metrics or {})


class FinetuneRunner(Runner):
    """Runner that saves checkpoints atomically and resumes only from checkpoints in its own work dir.

    mmengine's checkpoints hold objects `torch.load(weights_only=True)` rejects (design.md section
    2); the project rule allows full unpickling for a run's own work-dir checkpoints, and only
    there, so `resume` checks the path and loads those with `weights_only=False`.
    """

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        from mmengine.dist import is_main_process

        tmp = f".{filename}.tmp"
        super().save_checkpoint(out_dir, tmp, *args, **kwargs)
        if is_main_process():
            os.replace(os.path.join(out_dir, tmp), os.path.join(out_dir, filename))

    _resuming = False

    def resume(self, filename: str, *args, **kwargs) -> None:
        own = Path(self.work_dir).resolve()
        if own not in Path(filename).resolve().parents:
            raise ValueError(f"refusing to resume from {filename}: only checkpoints inside {own} can be resumed")
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def load_checkpoint(
        self, filename: str, map_location="cpu", strict: bool = False, revise_keys=((r"^module.", ""),)
    ):
        if not self._resuming:
            return super().load_checkpoint(filename, map_location, strict, list(revise_keys))
        from mmengine.model import is_model_wrapper
        from mmengine.runner.checkpoint import _load_checkpoint_to_model

        checkpoint = torch.load(filename, map_location=map_location, weights_only=False)
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=list(revise_keys))
        self._has_loaded = True
        return checkpoint


# Dicts whose keys are keyword arguments of something else (model, timm transform, optimizer): an
# override may add a key there; everywhere else it must name an existing key.
OPEN_DICTS = (
    "model",
    "model.mixup",
    "train_dataloader.dataset.transform",
    "val_dataloader.dataset.transform",
    "optim_wrapper",
    "optim_wrapper.optimizer",
    "optim_wrapper.paramwise_cfg",
)


def check_override_keys(cfg, options: dict, where: str) -> None:
    """Every `--cfg-options` key must exist in the config (or sit in an `OPEN_DICTS` dict): no silent typos."""
    for key in options:
        parts = key.split(".")
        node = cfg
        for depth, part in enumerate(parts):
            parent = ".".join(parts[:depth])
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, dict) and depth == len(parts) - 1 and parent in OPEN_DICTS:
                break
            else:
                known = sorted(node) if isinstance(node, dict) else type(node).__name__
                raise KeyError(f"{where}: unknown config key {key!r}; keys at {parent or '<top level>'}: {known}")


def _require(cfg, keys, where: str) -> None:
    missing = [k for k in keys if cfg.get(k) is None and k != "arch"]
    if missing or "arch" not in cfg:
        raise KeyError(f"{where}: fine-tune config needs top-level keys {list(keys)}; missing {missing or ['arch']}")


@PARAM_SCHEDULERS.register_module(name="TokesMAELR")
class MAELR(LRSchedulerMixin, _ParamScheduler):
    """MAE's lr rule (`util/lr_sched.py`, via `cosine_lr`): linear warmup from 0 over `warmup` epochs,
    then half-cosine to `min_ratio` x each group's initial lr, evaluated at fractional epochs.

    mmengine's LinearLR reaches its end factor one step early and its cosine is chained, so they
    drift from MAE's closed form; this scheduler is the closed form. `begin`/`end` in epochs.
    """

    def __init__(
        self,
        optimizer,
        warmup: float,
        min_ratio: float = 0.0,
        steps_per_epoch: int = 1,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if end == INF:
            raise ValueError("TokesMAELR needs a finite `end` (the last epoch)")
        self.warmup, self.min_ratio, self.steps_per_epoch = float(warmup), float(min_ratio), int(steps_per_epoch)
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None, **kwargs):
        """Per-iteration instance of an epoch-based config (`convert_to_iter_based=True`)."""
        if not by_epoch or not epoch_length:
            raise ValueError("TokesMAELR: convert_to_iter_based needs by_epoch=True and an epoch length")
        return cls(
            *args,
            begin=int(begin * epoch_length),
            end=int(end * epoch_length),
            by_epoch=False,
            steps_per_epoch=epoch_length,
            **kwargs,
        )

    def _get_value(self) -> list[float]:
        epochs = (self.end - self.begin) / self.steps_per_epoch
        factor = cosine_lr(self.last_step / self.steps_per_epoch, 1.0, epochs, self.warmup, self.min_ratio)
        return [base * factor for base in self.base_values]


def mae_schedule(epochs: int, warmup: int, min_lr_ratio: float) -> list[dict]:
    """The `param_scheduler` config of MAE's rule, stepped per iteration; a warmup as long as the
    run (a shortened demo) stays on the warmup ramp, as MAE's formula does."""
    return [
        dict(
            type="TokesMAELR",
            warmup=warmup,
            min_ratio=min_lr_ratio,
            begin=0,
            end=epochs,
            by_epoch=True,
            convert_to_iter_based=True,
        )
    ]


def finish_config(
    cfg,
    encoder: str,
    data_dir: str,
    work_dir: str,
    seed: int,
    num_classes: int,
    world_size: int = 1,
    launcher: str = "none",
    where: str = "config",
):
    """Fill the run-dependent parts of a fine-tune config (in place) and return it."""
    _require(cfg, SCHEDULE_KEYS, where)
    img, epochs, warmup = int(cfg.img_size), int(cfg.epochs), int(cfg.warmup_epochs)
    if warmup < 0 or epochs < 1:
        raise ValueError(f"{where}: need epochs >= 1 and warmup_epochs >= 0, got {epochs} and {warmup}")
    if cfg.model.get("type") == "TokesViTClassifier":
        accepted = set(inspect.signature(ViTClassifier.__init__).parameters) - {"self"}
        unknown = sorted(set(cfg.model) - accepted - {"type"})
        if unknown:
            raise KeyError(f"{where}: unknown model option(s) {unknown}; TokesViTClassifier takes {sorted(accepted)}")
    cfg.model.update(encoder=encoder, num_classes=num_classes, arch=cfg.arch, img_size=img)
    for name in ("train_dataloader", "val_dataloader"):
        loader = cfg[name]
        loader.batch_size = int(cfg.batch_size)
        loader.dataset.data_root = str(data_dir)
        loader.dataset.transform.input_size = img
    eff_batch = int(cfg.batch_size) * int(cfg.accum_iter) * world_size
    lr = float(cfg.blr) * eff_batch / 256
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.optim_wrapper.accumulative_counts = int(cfg.accum_iter)
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=int(cfg.get("val_interval", 1)))
    cfg.param_scheduler = mae_schedule(epochs, warmup, float(cfg.min_lr) / lr)
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed, deterministic=bool(cfg.get("deterministic", False)))
    apply_launcher(cfg, launcher)
    cfg.effective_batch = eff_batch
    return cfg


def run_finetune(cfg, resume: bool = False) -> tuple[dict[str, float], ViTClassifier]:
    """Train a finished config with the Runner; return the last validation metrics and the model."""
    from mmengine.model import is_model_wrapper

    cfg.resume = bool(resume)
    custom = [h for h in cfg.get("custom_hooks", []) if h.get("type") != "TokesLastMetricsHook"]
    cfg.custom_hooks = [*custom, dict(type="TokesLastMetricsHook")]
    runner = FinetuneRunner.from_cfg(cfg)
    runner.logger.info(
        f"fine-tune lr = {cfg.optim_wrapper.optimizer.lr:.3e} (blr {cfg.blr} x effective batch "
        f"{cfg.effective_batch} / 256), layer decay {cfg.optim_wrapper.paramwise_cfg.layer_decay_rate}"
    )
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, LastMetricsHook))
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return hook.metrics, model
