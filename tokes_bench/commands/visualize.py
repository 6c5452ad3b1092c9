"""`tokes-bench visualize CHECKPOINT --images DIR -o grid.png`: what the objective sees and predicts."""

from __future__ import annotations

import argparse

COMMAND = ("visualize",)
HELP = "grid per image: original | mixed (TOKES, swapped slots outlined) or masked (MAE) input | reconstruction"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="run checkpoint (.pth in a pretraining work dir)")
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="output .png")
    parser.add_argument("--num", type=int, default=8, help="number of images (even; default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the swap/mask sampling")


def run(args: argparse.Namespace) -> int:
    from tokes_bench.pretrain.visualize import visualize

    out = visualize(args.checkpoint, args.images, args.output, num=args.num, seed=args.seed)
    print(f"wrote {out}")
    return 0
