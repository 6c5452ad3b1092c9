"""Streaming VOST / DAVIS-2017 scorer and the official CSV files.

Each annotated frame is read, scored and dropped (one frame's masks in memory per worker, whatever
the video length); frames are scored by a thread pool (PNG decoding and numpy comparisons release
the GIL). Scores follow the official tools frame for frame: first and last annotated frames are
not scored, objects are 1..max id of the first annotation, void (255) is background unless
`ignore_void`. Where they differ on purpose it is documented in docs/vost.md.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokes_bench.adapters.vost.layout import (
    Layout,
    annotation_paths,
    check_ids,
    check_same_size,
    first_frame_objects,
    read_mask,
    read_sequences,
)
from tokes_bench.adapters.vost.metrics import (
    db_statistics,
    frame_boundary_f,
    frame_jaccard,
    last_quarter_start,
)
from tokes_bench.results.atomic import atomic_write_text

log = logging.getLogger(__name__)

GLOBAL_COLUMNS = {
    "vost": ["J-Mean", "J-Recall", "J-Decay", "J_last-Mean", "J_last-Recall", "J_last-Decay"],
    "davis": ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"],
}
SEQUENCE_COLUMNS = {"vost": ["Sequence", "J-Mean", "J_last-Mean"], "davis": ["Sequence", "J-Mean", "F-Mean"]}


@dataclass
class ObjectScores:
    """Per-frame scores of one object of one sequence (scored frames only)."""

    sequence: str
    obj_id: int
    J: np.ndarray
    F: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.sequence}_{self.obj_id}"


@dataclass
class Evaluation:
    """All objects' per-frame scores plus counts of tolerated irregularities."""

    protocol: str
    objects: list[ObjectScores] = field(default_factory=list)
    extra_id_frames: int = 0
    first_extra_id_file: str = ""
    frames: int = 0
    seconds: float = 0.0


def _score_frame(
    gt_path: Path, pred_path: Path, first_path: Path, n_objects: int, protocol: str, ignore_void: bool
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """J (and F for davis) of every object in one frame; also whether the prediction had ids above n."""
    gt = read_mask(gt_path)
    check_ids(gt, n_objects, gt_path)
    pred = read_mask(pred_path)
    check_same_size(gt.shape, pred.shape, gt_path, pred_path)
    extra = int(pred.max()) > n_objects
    if extra and protocol == "davis":
        ids = np.unique(pred[pred > n_objects]).tolist()
        raise ValueError(
            f"{pred_path}: predicted id(s) {ids} exceed the {n_objects} object(s) of the first annotation "
            f"{first_path} (the official DAVIS tool stops here too)"
        )
    j = frame_jaccard(gt, pred, n_objects, ignore_void)
    f = frame_boundary_f(gt, pred, n_objects, ignore_void) if protocol == "davis" else None
    return j, f, extra


def score_sequence(
    layout: Layout,
    seq: str,
    results_dir: Path,
    ignore_void: bool,
    executor: Executor,
) -> tuple[list[ObjectScores], int, str]:
    """Score one sequence: its objects, how many frames predict ids beyond them, and the first such file."""
    ann = annotation_paths(layout, seq)
    first = read_mask(ann[0])
    n_objects = first_frame_objects(first)
    scored = ann[1:-1]
    preds = [results_dir / seq / f"{p.stem}.png" for p in scored]
    missing = [p for p in preds if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"prediction {missing[0]} does not exist ({len(missing)} of {len(preds)} predictions of "
            f"sequence {seq!r} missing; one indexed PNG per annotated frame is expected)"
        )
    outs = list(
        executor.map(
            lambda gp: _score_frame(gp[0], gp[1], ann[0], n_objects, layout.protocol, ignore_void),
            zip(scored, preds, strict=True),
        )
    )
    j = np.stack([o[0] for o in outs], axis=1) if outs else np.zeros((n_objects, 0))
    f = None
    if layout.protocol == "davis":
        f = np.stack([o[1] for o in outs], axis=1) if outs else np.zeros((n_objects, 0))
    extra = [p for p, o in zip(preds, outs, strict=True) if o[2]]
    objs = [ObjectScores(seq, k + 1, j[k], None if f is None else f[k]) for k in range(n_objects)]
    return objs, len(extra), str(extra[0]) if extra else ""


def evaluate(
    layout: Layout,
    split: str,
    results_dir: str | os.PathLike,
    ignore_void: bool = False,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Score every sequence of `split` from the predicted PNGs in `results_dir`."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    seqs = read_sequences(layout, split)
    ev = Evaluation(protocol=layout.protocol)
    workers = workers or os.cpu_count() or 1
    t0 = last = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, seq in enumerate(seqs):
            objs, n_extra, first_extra = score_sequence(layout, seq, results_dir, ignore_void, pool)
            ev.objects.extend(objs)
            ev.frames += objs[0].J.size if objs else 0
            ev.extra_id_frames += n_extra
            ev.first_extra_id_file = ev.first_extra_id_file or first_extra
            now = time.perf_counter()
            if progress is not None and (now - last > 10 or i == len(seqs) - 1):
                rate = ev.frames / max(now - t0, 1e-9)
                eta = (now - t0) / (i + 1) * (len(seqs) - i - 1)
                progress(
                    f"scored {i + 1}/{len(seqs)} sequences, {ev.frames} frames, {rate:.1f} frames/s, ETA {eta:.0f} s"
                )
                last = now
    ev.seconds = time.perf_counter() - t0
    if ev.extra_id_frames:
        log.warning(
            "%d predicted frame(s) hold ids above the first-frame objects; those pixels count for no "
            "object, as in the official VOST tool (first: %s)",
            ev.extra_id_frames,
            ev.first_extra_id_file,
        )
    return ev


def summarize(ev: Evaluation) -> tuple[dict[str, float], list[dict]]:
    """Global row and per-object rows of the official CSVs, plus 'J_last-Mean' for every protocol."""
    stats: dict[str, list[tuple[float, float, float]]] = {"J": [], "J_last": [], "F": []}
    rows = []
    for o in ev.objects:
        j = db_statistics(o.J)
        jl = db_statistics(o.J[last_quarter_start(o.J.size) :])
        stats["J"].append(j)
        stats["J_last"].append(jl)
        row = {"Sequence": o.name, "J-Mean": j[0], "J_last-Mean": jl[0]}
        if o.F is not None:
            fs = db_statistics(o.F)
            stats["F"].append(fs)
            row["F-Mean"] = fs[0]
        rows.append(row)
    glob: dict[str, float] = {}
    for key in ("J", "J_last", "F"):
        if stats[key]:
            arr = np.array(stats[key], dtype=np.float64)
            glob[f"{key}-Mean"], glob[f"{key}-Recall"], glob[f"{key}-Decay"] = (float(x) for x in arr.mean(axis=0))
    if "F-Mean" in glob:
        glob["J&F-Mean"] = (glob["J-Mean"] + glob["F-Mean"]) / 2.0
    return glob, rows


def csv_paths(out_dir: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Paths of the global and per-sequence CSVs, named as the official tools name them."""
    out = Path(out_dir)
    return out / f"global_results-{split}.csv", out / f"per-sequence_results-{split}.csv"


def write_csvs(ev: Evaluation, out_dir: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Write both official CSVs (float format %.3f, as the official tools) atomically."""
    import pandas as pd

    glob, rows = summarize(ev)
    g_path, s_path = csv_paths(out_dir, split)
    g_cols = GLOBAL_COLUMNS[ev.protocol]
    s_cols = SEQUENCE_COLUMNS[ev.protocol]
    for path, frame in (
        (g_path, pd.DataFrame([[glob[c] for c in g_cols]], columns=g_cols)),
        (s_path, pd.DataFrame([[r[c] for c in s_cols] for r in rows], columns=s_cols)),
    ):
        buf = io.StringIO()
        frame.to_csv(buf, index=False, float_format="%.3f")
        atomic_write_text(path, buf.getvalue())
    return g_path, s_path


def format_tables(ev: Evaluation, split: str) -> str:
    """The global and per-sequence tables as the official tools print them (values to 3 decimals)."""
    import pandas as pd

    glob, rows = summarize(ev)
    g_cols = GLOBAL_COLUMNS[ev.protocol]
    s_cols = SEQUENCE_COLUMNS[ev.protocol]
    g = pd.DataFrame([[glob[c] for c in g_cols]], columns=g_cols)
    s = pd.DataFrame([[r[c] for c in s_cols] for r in rows], columns=s_cols)
    fmt = {"float_format": lambda x: f"{x:.3f}", "index": False}
    return (
        f"--------------------------- Global results for {split} ---------------------------\n"
        f"{g.to_string(**fmt)}\n\n"
        f"---------- Per sequence results for {split} ----------\n{s.to_string(**fmt)}"
    )
