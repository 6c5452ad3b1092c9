"""`tokes-bench eval finetune`: MAE end-to-end fine-tuning through mmengine's Runner, as result records."""

from __future__ import annotations

import argparse

from tokes_bench.adapters.classification.cli import add_common_arguments, setup_logging, work_dir
from tokes_bench.engine import LAUNCHERS

COMMAND = ("eval", "finetune")
HELP = "end-to-end fine-tuning (MAE protocol: layer decay, mixup/cutmix, RandAugment, AdamW) via mmengine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "finetune")
    parser.add_argument("--resume", action="store_true", help="resume from the last checkpoint in the work dir")
    parser.add_argument(
        "--launcher",
        default="none",
        choices=LAUNCHERS,
        help="multi-process launcher (torchrun: pytorch)",
    )


def run(args: argparse.Namespace) -> int:
    import time

    from mmengine.dist import is_main_process

    from tokes_bench.adapters.classification.cli import default_config
    from tokes_bench.adapters.classification.config import load_mm_config
    from tokes_bench.adapters.classification.data import open_splits
    from tokes_bench.adapters.classification.finetune import (
        check_override_keys,
        finish_config,
        run_finetune,
    )
    from tokes_bench.adapters.classification.recording import finish_run
    from tokes_bench.engine import init_distributed, parse_cfg_options

    setup_logging()
    start = time.perf_counter()
    config = args.config or default_config("finetune")
    options = parse_cfg_options(args.cfg_options)
    check_override_keys(load_mm_config(config, {}).to_dict(), options, f"--cfg-options for {config}")
    cfg = load_mm_config(config, options)
    protocol_cfg = cfg.to_dict()
    train, val = open_splits(args.data, None, None)  # clear errors for a bad layout before the Runner starts
    world = init_distributed(args.launcher)
    wd = work_dir(args, "finetune")
    finish_config(cfg, args.encoder, args.data, wd, args.seed, len(train.classes), world, args.launcher, config)
    metrics, model = run_finetune(cfg, resume=args.resume)
    if is_main_process():
        extra = {
            "num_classes": len(train.classes),
            "num_train": len(train),
            "num_val": len(val),
            "img_size": int(cfg.img_size),
            "epochs": int(cfg.epochs),
            "lr": float(cfg.optim_wrapper.optimizer.lr),
            "effective_batch": int(cfg.effective_batch),
            "layer_decay": float(cfg.optim_wrapper.paramwise_cfg.layer_decay_rate),
            "processes": world,
        }
        finish_run(
            args,
            "finetune",
            model.info,
            metrics,
            protocol_cfg,
            cfg.get("dataset"),
            wd,
            time.perf_counter() - start,
            extra,
        )
    return 0
