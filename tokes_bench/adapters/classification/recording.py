"""Turn a classification evaluation into result records (task 'classification', metrics top1/top5)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tokes_bench.models import EncoderInfo
from tokes_bench.results.records import ResultRecord, append_records, config_hash, new_run_id


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
    """One record per metric of one run (shared run id), with the encoder's provenance."""
    run_id = new_run_id(f"cls-{protocol}")
    return [
        ResultRecord(
            run_id=run_id,
            method=info.method,
            arch=info.arch,
            encoder_path=info.path,
            encoder_sha256=info.sha256,
            pretrain_epochs=info.pretrain_epochs,
            task="classification",
            protocol=protocol,
            dataset=dataset,
            split="val",
            metric=name,
            value=float(value),
            config_hash=config_hash(cfg),
            seed=seed,
            extra=dict(extra or {}),
        )
        for name, value in metrics.items()
    ]


def write_records(path: str | os.PathLike, records: list[ResultRecord]) -> Path:
    """Append the records to the JSON-lines results file (atomic, locked)."""
    return append_records(path, records)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as indented JSON via a temp file and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=str)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def summary_line(protocol: str, info: EncoderInfo, metrics: dict[str, float], seconds: float) -> str:
    """One human line: protocol, encoder, metrics, wall time."""
    vals = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
    return f"{protocol} {info.method}/{info.arch} ({info.path}): {vals} [{seconds:.1f} s]"
