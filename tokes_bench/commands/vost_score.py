"""`tokes-bench vost-score`: score predicted masks with the official VOST / DAVIS-2017 definitions."""

from __future__ import annotations

import argparse

COMMAND = ("vost-score",)
HELP = "score predicted indexed PNGs against VOST or DAVIS-2017 annotations and write the official CSVs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, metavar="DIR", help="folder of predictions: DIR/<seq>/<frame>.png")
    parser.add_argument("--dataset", required=True, metavar="DIR", help="dataset root (VOST or DAVIS-2017 layout)")
    parser.add_argument("--set", default="val", help="split listed in ImageSets (default: val)")
    parser.add_argument("--protocol", choices=("vost", "davis"), default="vost", help="metric set and layout")
    parser.add_argument("--out", metavar="DIR", help="where to write the CSVs (default: the --results folder)")
    parser.add_argument(
        "--ignore-void",
        action="store_true",
        help="exclude ground-truth 255 pixels from J and F (the official tools count them as background)",
    )
    parser.add_argument("--workers", type=int, default=None, help="scoring threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    import logging

    from tokes_bench.adapters.vost.layout import make_layout
    from tokes_bench.adapters.vost.scoring import evaluate, format_tables, write_csvs

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    layout = make_layout(args.dataset, args.protocol)
    ev = evaluate(layout, args.set, args.results, args.ignore_void, args.workers, progress=print)
    paths = write_csvs(ev, args.out or args.results, args.set)
    print(format_tables(ev, args.set))
    print(f"\n{ev.frames} frames of {len(ev.objects)} objects in {ev.seconds:.1f} s; wrote {paths[0]} and {paths[1]}")
    return 0
