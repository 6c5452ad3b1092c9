"""Leaderboards from result records: per-task tables, a ranked summary and TOKES-vs-MAE comparisons.

Rules (docs/leaderboard.md explains them for users):
- an encoder is (method, arch, pretrain_epochs, encoder_sha256); its seeds aggregate within it;
- a record's key is (run_id, task, protocol, dataset, split, metric): equal keys with equal values
  count once, equal keys with different values are an error naming both file:line locations;
- re-runs of one seed are averaged first, then mean / sample std are taken over seeds;
- published reference rows (published.json) appear beside the tasks that have computed records,
  marked source=published, and never enter a computed statistic (comparison, ranks).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tokes_bench.results.records import read_records
from tokes_bench.results.stats import bootstrap_diff_ci, bootstrap_mean_ci, mean_std, row_rng

TABLE_TASKS = ("classification", "detection", "segmentation", "vost")
ENCODER_KEYS = ["method", "arch", "pretrain_epochs", "encoder_sha256"]
EVAL_KEYS = ["task", "protocol", "dataset", "split"]
CELL_KEYS = ["source", *ENCODER_KEYS, *EVAL_KEYS, "metric"]
DEDUP_KEYS = ["run_id", "task", "protocol", "dataset", "split", "metric"]
METRIC_ORDER = ("top1", "top5", "bbox_mAP", "segm_mAP", "mIoU", "J", "J_tr", "J&F", "F")
# (summary column, task, protocol, metric): the headline numbers, all higher-is-better.
HEADLINES = (
    ("linear_top1", "classification", "linear", "top1"),
    ("finetune_top1", "classification", "finetune", "top1"),
    ("bbox_mAP", "detection", "vitdet-maskrcnn", "bbox_mAP"),
    ("segm_mAP", "detection", "vitdet-maskrcnn", "segm_mAP"),
    ("mIoU", "segmentation", "upernet", "mIoU"),
    ("vost_J", "vost", "vost", "J"),
    ("vost_J_tr", "vost", "vost", "J_tr"),
)
PUBLISHED_PATH = Path(__file__).with_name("published.json")
PUBLISHED_FIELDS = (*ENCODER_KEYS[:3], *EVAL_KEYS, "metric", "value", "citation")
FLOAT_DECIMALS = 6


class LeaderboardError(ValueError):
    """Records that cannot be combined into a leaderboard (conflicts, nothing to show)."""


@dataclass
class Leaderboard:
    """Every table of one leaderboard build; `cells` is the long frame the others derive from."""

    cells: pd.DataFrame
    tasks: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    comparison: pd.DataFrame
    info: dict = field(default_factory=dict)


def find_record_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The .jsonl files named by `paths` (files, or directories searched recursively), in order, once."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.jsonl"))
            if not found:
                raise FileNotFoundError(f"{p}: no *.jsonl result files in this directory")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such results file or directory")
    unique: dict[Path, Path] = {}
    for f in out:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def format_versions(versions: dict) -> str:
    """A record's package versions as one sortable string, e.g. 'python=3.11.2;torch=2.14.1'."""
    return ";".join(f"{k}={versions[k]}" for k in sorted(versions))


def seed_label(seed: int | None, run_id: str) -> str:
    """The sample a record belongs to: its seed, or its own run when it has no seed (never paired)."""
    return str(seed) if seed is not None else f"run:{run_id}"


def _seed_order(label: str) -> tuple[int, int, str]:
    return (0, int(label), "") if not label.startswith("run:") else (1, 0, label)


def load_records(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, dict]:
    """Read, de-duplicate and check records; returns evaluation records and counts for the log."""
    files = find_record_files(paths)
    rows = [rec for f in files for rec in read_records(f)]
    if not rows:
        raise LeaderboardError(f"no records in {', '.join(map(str, files))}")
    df = pd.DataFrame(rows)
    # From the raw dicts: a column mixing ints and None would turn seed 0 into 0.0.
    df["seed_label"] = [seed_label(r["seed"], r["run_id"]) for r in rows]
    df["value"] = df["value"].astype(float)
    df["where"] = df["_file"] + ":" + df["_line"].astype(str)
    exact = df.duplicated([*DEDUP_KEYS, "value"], keep="first")
    df = df[~exact]
    clash = df[df.duplicated(DEDUP_KEYS, keep=False)]
    if len(clash):
        first = clash.iloc[0]
        same = clash[(clash[DEDUP_KEYS] == first[DEDUP_KEYS]).all(axis=1)]
        a, b = same.iloc[0], same.iloc[1]
        key = ", ".join(f"{k}={a[k]!r}" for k in DEDUP_KEYS)
        raise LeaderboardError(
            f"conflicting records ({key}): value {a['value']!r} at {a['where']} "
            f"but {b['value']!r} at {b['where']}"
        )
    n_other = int((~df["task"].isin(TABLE_TASKS)).sum())
    df = df[df["task"].isin(TABLE_TASKS)].copy()
    if df.empty:
        raise LeaderboardError(
            f"no evaluation records (tasks {', '.join(TABLE_TASKS)}) in {', '.join(map(str, files))}"
        )
    df["pretrain_epochs"] = df["pretrain_epochs"].astype("Int64")
    df["versions"] = df["versions"].map(format_versions)
    df["source"] = "computed"
    info = {"files": [str(f) for f in files], "n_read": len(rows), "n_duplicates": int(exact.sum()),
            "n_non_eval": n_other, "n_records": len(df)}
    return df.reset_index(drop=True), info


def load_published(path: str | os.PathLike = PUBLISHED_PATH) -> pd.DataFrame:
    """Published reference rows from the versioned JSON file, checked field by field."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LeaderboardError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise LeaderboardError(f"{path}: expected an object with a 'rows' list")
    for i, row in enumerate(rows):
        missing = [k for k in PUBLISHED_FIELDS if k not in row]
        if missing:
            raise LeaderboardError(f"{path}: rows[{i}] misses field(s) {missing}")
        if not isinstance(row["value"], (int, float)) or isinstance(row["value"], bool):
            raise LeaderboardError(f"{path}: rows[{i}].value = {row['value']!r} should be a number")
    df = pd.DataFrame(rows, columns=list(PUBLISHED_FIELDS))
    df["value"] = df["value"].astype(float)
    df["pretrain_epochs"] = df["pretrain_epochs"].astype("Int64")
    df["encoder_sha256"] = ""
    df["source"] = "published"
    return df


def _join(values: Iterable[str], sep: str = ";") -> str:
    return sep.join(sorted({v for v in values if v}))


def _key_text(values: Sequence) -> str:
    return "|".join("" if pd.isna(v) else str(v) for v in values)


def compute_cells(records: pd.DataFrame, published: pd.DataFrame, seed: int, n_boot: int) -> pd.DataFrame:
    """One row per (source, encoder, task, protocol, dataset, split, metric) with seed statistics.

    Published rows are kept only for tasks that have computed records; they carry their value as
    `mean`, no spread and no seeds.
    """
    out = []
    for key, g in records.groupby(CELL_KEYS, dropna=False, sort=True):
        per_seed = g.groupby("seed_label")["value"].mean()
        labels = sorted(per_seed.index, key=_seed_order)
        values = [float(per_seed[s]) for s in labels]
        mean, std = mean_std(values)
        lo, hi = bootstrap_mean_ci(values, n_boot, row_rng(seed, _key_text(key)))
        out.append({**dict(zip(CELL_KEYS, key, strict=True)), "mean": mean, "std": std,
                    "n_seeds": len(values), "ci_low": lo, "ci_high": hi,
                    "samples": dict(zip(labels, values, strict=True)),
                    "run_ids": frozenset(g["run_id"]), "config_hash": _join(g["config_hash"]),
                    "versions": _join(g["versions"], " | "), "encoder_path": _join(g["encoder_path"]),
                    "citation": ""})
    tasks = set(records["task"])
    for _, p in published[published["task"].isin(tasks)].iterrows():
        out.append({**{k: p[k] for k in CELL_KEYS}, "mean": p["value"], "std": np.nan,
                    "n_seeds": pd.NA, "ci_low": np.nan, "ci_high": np.nan, "samples": {},
                    "run_ids": frozenset(), "config_hash": "", "versions": "", "encoder_path": "",
                    "citation": p["citation"]})
    cells = pd.DataFrame(out)
    cells["pretrain_epochs"] = cells["pretrain_epochs"].astype("Int64")
    cells["n_seeds"] = cells["n_seeds"].astype("Int64")
    return cells


def metric_columns(metrics: Iterable[str]) -> list[str]:
    """Metrics in the conventional order (METRIC_ORDER), any others after, alphabetically."""
    ms = set(metrics)
    return [m for m in METRIC_ORDER if m in ms] + sorted(ms - set(METRIC_ORDER))


def task_table(cells: pd.DataFrame, task: str) -> pd.DataFrame:
    """Row per source x encoder x protocol x dataset x split: metric means and stds, provenance.

    Sorted by protocol, dataset, split, computed before published, then the first metric
    (best first), then the encoder keys.
    """
    sub = cells[cells["task"] == task]
    metrics = metric_columns(sub["metric"])
    row_keys = ["source", *ENCODER_KEYS, "protocol", "dataset", "split"]
    rows = []
    for key, g in sub.groupby(row_keys, dropna=False, sort=False):
        row = dict(zip(row_keys, key, strict=True))
        by_metric = g.set_index("metric")
        for m in metrics:
            row[m] = by_metric["mean"].get(m, np.nan)
            row[f"{m}_std"] = by_metric["std"].get(m, np.nan)
        computed = row["source"] == "computed"
        seeds = sorted({s for d in g["samples"] for s in d}, key=_seed_order)
        row["n_seeds"] = len(seeds) if computed else pd.NA
        row["seeds"] = ";".join(seeds)
        row["n_runs"] = len(frozenset().union(*g["run_ids"])) if computed else pd.NA
        row["config_hash"] = _join(";".join(g["config_hash"]).split(";"))
        row["versions"] = _join(" | ".join(g["versions"]).split(" | "), " | ")
        row["encoder_path"] = _join(";".join(g["encoder_path"]).split(";"))
        row["citation"] = _join(g["citation"])
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in ("pretrain_epochs", "n_seeds", "n_runs"):
        table[col] = table[col].astype("Int64")
    order = ["protocol", "dataset", "split", "source", metrics[0], *ENCODER_KEYS]
    asc = [True, True, True, True, False, True, True, True, True]
    table = table.sort_values(order, ascending=asc, na_position="last", kind="mergesort")
    return table.reset_index(drop=True)


def summary_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Row per encoder, one column per headline metric and dataset/split, ranked.

    Rank rule (computed encoders only; published rows follow, unranked): more headline columns
    first (n_headline, descending), then rank_score ascending = the mean over the encoder's
    headline columns of its rank in that column (1 = highest value, ties share the average rank),
    then method, arch, pretrain_epochs, encoder_sha256.
    """
    headline = {(task, protocol, metric): (i, name)
                for i, (name, task, protocol, metric) in enumerate(HEADLINES)}
    rows, cols = [], set()
    for key, g in cells.groupby(["source", *ENCODER_KEYS], dropna=False, sort=False):
        row = dict(zip(["source", *ENCODER_KEYS], key, strict=True))
        for c in g.itertuples(index=False):
            if (c.task, c.protocol, c.metric) in headline:
                i, name = headline[(c.task, c.protocol, c.metric)]
                col = (i, c.dataset, c.split, f"{name}@{c.dataset}/{c.split}")
                cols.add(col)
                row[col[-1]] = c.mean
        row["citation"] = _join(g["citation"], " | ")
        rows.append(row)
    cols = [c[-1] for c in sorted(cols)]
    table = pd.DataFrame(rows).reindex(columns=["source", *ENCODER_KEYS, *cols, "citation"])
    table["pretrain_epochs"] = table["pretrain_epochs"].astype("Int64")
    table[cols] = table[cols].astype(float)
    computed = table["source"] == "computed"
    ranks = table.loc[computed, cols].rank(ascending=False, method="average")
    table["n_headline"] = table[cols].notna().sum(axis=1).astype("Int64")
    table["rank_score"] = ranks.mean(axis=1) if cols else np.nan
    table["_pub"] = ~computed
    table = table.sort_values(
        ["_pub", "n_headline", "rank_score", *ENCODER_KEYS],
        ascending=[True, False, True, True, True, True, True], na_position="last", kind="mergesort",
    ).reset_index(drop=True)
    rank = pd.array([pd.NA] * len(table), dtype="Int64")
    n_comp = int((~table["_pub"]).sum())
    rank[:n_comp] = np.arange(1, n_comp + 1)
    table.insert(1, "rank", rank)
    return table[["source", "rank", *ENCODER_KEYS, *cols, "n_headline", "rank_score", "citation"]]


def _compare(t: pd.Series, m: pd.Series, seed: int, n_boot: int) -> dict:
    """One TOKES-vs-MAE row: paired bootstrap when both have the same integer seeds, else unpaired."""
    ts, ms = t["samples"], m["samples"]
    named = not any(s.startswith("run:") for s in [*ts, *ms])
    paired = named and set(ts) == set(ms)
    key = _key_text([*(t[k] for k in (*EVAL_KEYS, "metric", "arch", "pretrain_epochs")),
                     t["encoder_sha256"], m["encoder_sha256"]])
    notes = []
    if paired:
        labels = sorted(ts, key=_seed_order)
        a, b = [ts[s] for s in labels], [ms[s] for s in labels]
        method = "paired bootstrap"
        if len(labels) < 2:
            notes.append("one seed per method: no interval (needs >= 2 seeds)")
    else:
        a, b = list(ts.values()), list(ms.values())
        method = "unpaired bootstrap"
        if named:
            notes.append(f"seeds not matched (tokes {';'.join(ts)}; mae {';'.join(ms)})")
        else:
            notes.append("runs without a seed cannot be paired")
        for name, x in (("tokes", a), ("mae", b)):
            if len(x) < 2:
                notes.append(f"one seed for {name}: no interval (needs >= 2 seeds each)")
    lo, hi = bootstrap_diff_ci(a, b, paired, n_boot, row_rng(seed, key))
    if np.isfinite(lo) and min(len(a), len(b)) < 5:
        notes.append("fewer than 5 seeds: interval is coarse")
    if pd.isna(t["pretrain_epochs"]):
        notes.append("pretraining epochs unknown for both encoders")
    return {
        **{k: t[k] for k in (*EVAL_KEYS, "metric", "arch", "pretrain_epochs")},
        "tokes_sha256": t["encoder_sha256"], "mae_sha256": m["encoder_sha256"],
        "tokes_mean": t["mean"], "tokes_std": t["std"], "tokes_n": len(a),
        "mae_mean": m["mean"], "mae_std": m["std"], "mae_n": len(b),
        "diff": t["mean"] - m["mean"], "ci_low": lo, "ci_high": hi,
        "ci_method": method if np.isfinite(lo) else "", "n_pairs": len(a) if paired else 0,
        "n_boot": n_boot, "note": "; ".join(notes),
    }


COMPARISON_COLUMNS = [
    *EVAL_KEYS, "metric", "arch", "pretrain_epochs", "tokes_sha256", "mae_sha256", "tokes_mean",
    "tokes_std", "tokes_n", "mae_mean", "mae_std", "mae_n", "diff", "ci_low", "ci_high", "ci_method",
    "n_pairs", "n_boot", "note",
]


def comparison_table(cells: pd.DataFrame, seed: int, n_boot: int) -> pd.DataFrame:
    """TOKES minus MAE per task/protocol/dataset/split/metric at matched arch and pretrain epochs.

    Computed cells only. Every TOKES encoder is compared with every MAE encoder of the same arch
    and epochs. The 95% interval is a percentile bootstrap of the difference (n_boot draws).
    """
    comp = cells[(cells["source"] == "computed") & cells["method"].isin(["tokes", "mae"])]
    rows = []
    group_keys = [*EVAL_KEYS, "metric", "arch", "pretrain_epochs"]
    for _, g in comp.groupby(group_keys, dropna=False, sort=True):
        for _, t in g[g["method"] == "tokes"].iterrows():
            for _, m in g[g["method"] == "mae"].iterrows():
                rows.append(_compare(t, m, seed, n_boot))
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    for col in ("pretrain_epochs", "tokes_n", "mae_n", "n_pairs", "n_boot"):
        table[col] = table[col].astype("Int64")
    return table


def build_leaderboard(
    paths: Iterable[str | os.PathLike],
    seed: int = 0,
    n_boot: int = 10000,
    published_path: str | os.PathLike = PUBLISHED_PATH,
) -> Leaderboard:
    """Read records and build every table (nothing is written)."""
    if n_boot < 1:
        raise ValueError(f"--n-boot must be >= 1, got {n_boot}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    records, info = load_records(paths)
    cells = compute_cells(records, load_published(published_path), seed, n_boot)
    present = [t for t in TABLE_TASKS if (cells["task"] == t).any()]
    info.update(seed=seed, n_boot=n_boot, tasks=present)
    return Leaderboard(
        cells=cells,
        tasks={t: task_table(cells, t) for t in present},
        summary=summary_table(cells),
        comparison=comparison_table(cells, seed, n_boot),
        info=info,
    )


def to_csv_text(df: pd.DataFrame) -> str:
    """CSV text with floats rounded to FLOAT_DECIMALS places (NaN / NA written as empty cells)."""
    floats = df.select_dtypes(include="float").columns
    rounded = df.assign(**{c: df[c].round(FLOAT_DECIMALS) for c in floats})
    return rounded.to_csv(index=False, lineterminator="\n")


def write_leaderboard(lb: Leaderboard, out_dir: str | os.PathLike, html: bool = False) -> list[Path]:
    """Write every output file atomically into `out_dir`; returns the paths written."""
    from tokes_bench.results import render
    from tokes_bench.results.atomic import atomic_write_bytes, atomic_write_text

    out = Path(out_dir)
    written = [atomic_write_text(out / f"{task}.csv", to_csv_text(t)) for task, t in lb.tasks.items()]
    written.append(atomic_write_text(out / "summary.csv", to_csv_text(lb.summary)))
    written.append(atomic_write_text(out / "comparison.csv", to_csv_text(lb.comparison)))
    written.append(atomic_write_text(out / "leaderboard.md", render.markdown(lb)))
    png = render.chart_png(lb)
    written.append(atomic_write_bytes(out / "leaderboard.png", png))
    if html:
        written.append(atomic_write_text(out / "leaderboard.html", render.html_page(lb, png)))
    return written
