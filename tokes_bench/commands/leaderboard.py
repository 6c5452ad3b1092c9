"""`tokes-bench leaderboard`: result records -> per-task CSVs, summary, TOKES-vs-MAE comparison, md, chart."""

from __future__ import annotations

import argparse

COMMAND = ("leaderboard",)
HELP = "gather result records into leaderboard CSVs, a TOKES-vs-MAE comparison, markdown, a chart (+ HTML)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        nargs="+",
        default=["work_dirs/results.jsonl"],
        metavar="PATH",
        help="result-record .jsonl files or directories searched for *.jsonl (default: work_dirs/results.jsonl)",
    )
    parser.add_argument("--out", default="leaderboards", metavar="DIR", help="output directory (default: leaderboards)")
    parser.add_argument(
        "--html", action="store_true", help="also write leaderboard.html (sortable tables, opens without a server)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default: 0)")
    parser.add_argument("--n-boot", type=int, default=10000, help="bootstrap draws (default: 10000)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tokes_bench.results.leaderboard import TABLE_TASKS, build_leaderboard, write_leaderboard

    lb = build_leaderboard(args.results, seed=args.seed, n_boot=args.n_boot)
    info = lb.info
    print(
        f"read {info['n_read']} records from {len(info['files'])} file(s): {info['n_records']} evaluation "
        f"records, {info['n_duplicates']} exact duplicates counted once, "
        f"{info['n_non_eval']} non-evaluation records skipped"
    )
    written = write_leaderboard(lb, args.out, html=args.html)
    out = Path(args.out)
    for task in TABLE_TASKS:
        if task in lb.tasks:
            print(f"{task}.csv: {len(lb.tasks[task])} rows")
        else:
            stale = " (an older file there was left as it is)" if (out / f"{task}.csv").exists() else ""
            print(f"{task}.csv: not written, no {task} records{stale}")
    n_ci = int(lb.comparison["ci_low"].notna().sum())
    print(
        f"summary.csv: {len(lb.summary)} encoders; comparison.csv: {len(lb.comparison)} TOKES-vs-MAE rows "
        f"({n_ci} with an interval)"
    )
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
