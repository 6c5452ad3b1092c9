"""`tokes-bench pretrain CONFIG`: TOKES or MAE pretraining with mmengine (see docs/pretraining.md)."""

from __future__ import annotations

import argparse

from tokes_bench.engine import LAUNCHERS

COMMAND = ("pretrain",)
HELP = "pretrain a ViT encoder with TOKES or MAE from an mmengine config (writes <work-dir>/encoder.safetensors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="pretraining config, e.g. configs/pretrain/tokes_vit-t-16_demo.py")
    parser.add_argument("--work-dir", help="output folder (default: work_dirs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in the work dir")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        default=None,
        metavar="KEY=VALUE",
        help="override config values, e.g. data_root=/data/imagenet model.swap_ratio=0.25",
    )
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="none",
        help="process launcher: pytorch under torchrun, slurm under srun",
    )
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from tokes_bench.pretrain.runner import pretrain

    ckpt = pretrain(args.config, args.work_dir, args.cfg_options, resume=args.resume, launcher=args.launcher)
    print(f"last checkpoint: {ckpt}\nencoder: {ckpt.parent / 'encoder.safetensors'}")
    return 0
