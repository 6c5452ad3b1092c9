"""`tokes-bench eval knn`: DINO's weighted kNN on frozen features (k=20, T=0.07, cosine), as records."""

from __future__ import annotations

import argparse

from tokes_bench.adapters.classification.cli import add_common_arguments, setup_logging, work_dir

COMMAND = ("eval", "knn")
HELP = "weighted kNN classifier on frozen features (DINO protocol: k=20, T=0.07, cosine); training-free"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "knn")


def run(args: argparse.Namespace) -> int:
    import time

    from tokes_bench.adapters.classification.config import KnnSettings, as_dict, settings_from_config
    from tokes_bench.adapters.classification.knn import run_knn
    from tokes_bench.adapters.classification.recording import finish_run, frozen_extra

    setup_logging()
    start = time.perf_counter()
    s = settings_from_config(KnnSettings, args.config, args.cfg_options)
    wd = work_dir(args, "knn")
    res = run_knn(args.encoder, args.data, s, wd, seed=args.seed)
    extra = {**frozen_extra(res.features, s), "k": s.k, "temperature": s.temperature}
    finish_run(
        args,
        "knn",
        res.features.info,
        res.metrics,
        as_dict(s),
        s.dataset,
        wd,
        time.perf_counter() - start,
        extra,
    )
    return 0
