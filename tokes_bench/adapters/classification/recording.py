"""Turn a classification evaluation into result records (task 'classification', metrics top1/top5)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tokes_bench.models import EncoderInfo
from tokes_bench.results.atomic import atomic_write_text
from tokes_bench.results.records import ResultRecord, append_records, records_for_run


def dataset_name(configured: str | None, data_dir: str | os.PathLike) -> str:
    """The dataset name of the records: the config's `dataset`, else the data folder's name."""
    return configured or Path(data_dir).resolve().name


def classification_records(
    info: EncoderInfo,
    protocol: str,
    dataset: str,
    metrics: dict[str, float],
    cfg: dict | str,
    seed: int | None,
    extra: dict | None = None,
) -> list[ResultRecord]:
    """One record per metric of one classification run (split 'val'), with the encoder's provenance."""
    return records_for_run(info, "classification", protocol, dataset, "val", metrics, cfg, seed, extra,
                           run_prefix=f"cls-{protocol}")


def write_records(path: str | os.PathLike, records: list[ResultRecord]) -> Path:
    """Append the records to the JSON-lines results file (atomic, locked)."""
    return append_records(path, records)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as indented JSON atomically (temp file + rename)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def summary_line(protocol: str, info: EncoderInfo, metrics: dict[str, float], seconds: float) -> str:
    """One human line: protocol, encoder, metrics, wall time."""
    vals = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
    return f"{protocol} {info.method}/{info.arch} ({info.path}): {vals} [{seconds:.1f} s]"


def finish_run(
    args,
    protocol: str,
    info: EncoderInfo,
    metrics: dict[str, float],
    cfg: dict,
    dataset: str | None,
    work_dir: str,
    seconds: float,
    extra: dict,
) -> list[ResultRecord]:
    """Shared end of the three commands: save the settings used, append records, print a summary."""
    extra = {
        "config": args.config or "",
        "data": str(Path(args.data).resolve()),
        "wall_seconds": round(seconds, 2),
        **extra,
    }
    records = classification_records(
        info, protocol, dataset_name(dataset, args.data), metrics, cfg, args.seed, extra
    )
    write_json_atomic(Path(work_dir) / f"{protocol}_settings.json", cfg)
    write_records(args.results, records)
    print(summary_line(protocol, info, metrics, seconds))
    return records


def frozen_extra(feats, settings) -> dict:
    """Record extras common to the frozen-feature protocols: data sizes, pooling, extraction time."""
    return {
        "num_classes": feats.num_classes,
        "num_train": int(feats.train.shape[1]),
        "num_val": int(feats.val.shape[0]),
        "pool": settings.pool,
        "img_size": settings.img_size,
        "extract_seconds": round(feats.extract_seconds, 2),
    }
