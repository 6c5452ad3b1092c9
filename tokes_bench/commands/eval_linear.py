"""`tokes-bench eval linear`: MAE linear probe of a frozen encoder on an ImageFolder, as result records."""

from __future__ import annotations

import argparse

from tokes_bench.adapters.classification.cli import add_common_arguments, setup_logging, work_dir

COMMAND = ("eval", "linear")
HELP = "linear probe (MAE protocol: frozen cls token, BatchNorm + linear, LARS) on cached features"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "linear")


def run(args: argparse.Namespace) -> int:
    import time

    from tokes_bench.adapters.classification.config import LinearSettings, as_dict, settings_from_config
    from tokes_bench.adapters.classification.linear_probe import run_linear_probe
    from tokes_bench.adapters.classification.recording import finish_run, frozen_extra

    setup_logging()
    start = time.perf_counter()
    s = settings_from_config(LinearSettings, args.config, args.cfg_options)
    wd = work_dir(args, "linear")
    res = run_linear_probe(args.encoder, args.data, s, wd, seed=args.seed)
    extra = {
        **frozen_extra(res.features, s),
        "epochs": s.epochs,
        "lr": res.lr,
        "batch_size": res.batch_size,
        "optimizer": s.optimizer,
        "aug_views": s.aug_views,
    }
    finish_run(
        args,
        "linear",
        res.features.info,
        res.metrics,
        as_dict(s),
        s.dataset,
        wd,
        time.perf_counter() - start,
        extra,
    )
    return 0
