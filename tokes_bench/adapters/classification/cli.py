"""Arguments and plumbing shared by `tokes-bench eval linear|finetune|knn`; defined once."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

DEFAULT_RESULTS = "work_dirs/results.jsonl"


def add_common_arguments(parser: argparse.ArgumentParser, protocol: str) -> None:
    """--encoder, --data, --config, --work-dir, --seed, --results, --cfg-options."""
    parser.add_argument(
        "--encoder",
        required=True,
        help="exported encoder (.safetensors from `tokes-bench export`) or random:<arch> (random-init floor)",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="ImageFolder root with train/<class>/* and val/<class>/* (ImageNet layout)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help=f"mmengine .py config (configs/classification/{protocol}_*.py); default: the published protocol",
    )
    parser.add_argument(
        "--work-dir", default=None, help=f"outputs and caches (default work_dirs/classification/{protocol})"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--results",
        default=DEFAULT_RESULTS,
        help=f"JSON-lines file the result records are appended to ({DEFAULT_RESULTS})",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        metavar="KEY=VALUE",
        default=None,
        help="override config keys, e.g. epochs=10 blr=0.05 (dotted keys for nested configs)",
    )


def default_config(protocol: str) -> str | None:
    """The config used without --config: the MAE fine-tune base config; None (code defaults) otherwise."""
    if protocol != "finetune":
        return None
    path = Path(__file__).resolve().parents[3] / "configs" / "classification" / "_base_" / "finetune_mae.py"
    if not path.is_file():
        raise FileNotFoundError(f"default fine-tune config {path} is missing; pass --config")
    return str(path)


def work_dir(args: argparse.Namespace, protocol: str) -> str:
    """The run's work dir: --work-dir or work_dirs/classification/<protocol>."""
    return args.work_dir or f"work_dirs/classification/{protocol}"


def setup_logging() -> None:
    """Send the package's progress lines to stderr at INFO level (once)."""
    log = logging.getLogger("tokes_bench")
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False
