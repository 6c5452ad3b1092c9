"""`tokes-bench demo`: the whole pipeline on embedded data, on a CPU, in minutes."""

from __future__ import annotations

import argparse

COMMAND = ("demo",)
HELP = ("pretrain TOKES and MAE on embedded digits, evaluate them and a random-init encoder "
        "(linear, kNN, fine-tune, VOST propagation), and write the leaderboard")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", default="work_dirs/demo", help="runs, data and records (default: %(default)s)")
    parser.add_argument("--out", default="leaderboards", help="leaderboard folder (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=1, help="evaluation seeds per encoder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs everywhere (a smoke test of the pipeline)")
    parser.add_argument("--no-finetune", action="store_true", help="skip fine-tuning")
    parser.add_argument("--no-vost", action="store_true", help="skip VOST label propagation")


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from tokes_bench.demo import DemoPlan, run_demo

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    plan = DemoPlan(work_dir=Path(args.work_dir), out_dir=Path(args.out), seeds=tuple(range(args.seeds)),
                    quick=args.quick, finetune=not args.no_finetune, vost=not args.no_vost)
    run_demo(plan)
    return 0
