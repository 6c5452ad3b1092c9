"""The result-record schema every evaluation writes, with atomic appends and strict reading.

A record is one measured number: which encoder (method, arch, checkpoint sha256, epochs), which
evaluation (task, protocol, dataset, split, metric), and how it was made (config hash, seed,
package versions, time). Files hold one JSON object per line.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import math
import os
import platform
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata as _md
from pathlib import Path

SCHEMA_VERSION = 1
METHODS = ("tokes", "mae", "random", "other")
TASKS = ("classification", "detection", "segmentation", "vost", "pretrain")
TRACKED_PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "mmengine",
    "mmcv",
    "mmcv-lite",
    "mmdet",
    "mmsegmentation",
)


class RecordError(ValueError):
    """A record that does not follow the schema; the message names file, line and field."""


@dataclass
class ResultRecord:
    """One measured value of one evaluation run."""

    run_id: str
    method: str
    arch: str
    encoder_path: str
    encoder_sha256: str
    pretrain_epochs: int | None
    task: str
    protocol: str
    dataset: str
    split: str
    metric: str
    value: float
    config_hash: str
    seed: int | None
    versions: dict[str, str] = field(default_factory=dict)
    time_utc: str = ""
    extra: dict = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.time_utc:
            self.time_utc = utc_now()
        if not self.versions:
            self.versions = package_versions()
        validate(asdict(self))

    def to_json(self) -> str:
        """One line of JSON, keys in schema order."""
        return json.dumps(asdict(self), separators=(",", ":"), allow_nan=False)


_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "method": (str,),
    "arch": (str,),
    "encoder_path": (str,),
    "encoder_sha256": (str,),
    "pretrain_epochs": (int, type(None)),
    "task": (str,),
    "protocol": (str,),
    "dataset": (str,),
    "split": (str,),
    "metric": (str,),
    "value": (float, int),
    "config_hash": (str,),
    "seed": (int, type(None)),
    "versions": (dict,),
    "time_utc": (str,),
    "extra": (dict,),
    "schema": (int,),
}
FIELDS = tuple(f.name for f in fields(ResultRecord))


def validate(obj: dict, where: str = "record") -> dict:
    """Check a decoded record against the schema; raise RecordError naming `where` and the field."""
    if not isinstance(obj, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in FIELDS if k not in obj and k not in ("extra", "schema")]
    if missing:
        raise RecordError(f"{where}: missing field(s) {missing}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise RecordError(f"{where}: unknown field(s) {unknown}")
    for k, v in obj.items():
        types = _TYPES[k]
        if isinstance(v, bool) or not isinstance(v, types):
            raise RecordError(
                f"{where}: field {k!r} = {v!r} should be {' or '.join(t.__name__ for t in types)}"
            )
    if obj["method"] not in METHODS:
        raise RecordError(f"{where}: field 'method' = {obj['method']!r}, expected one of {METHODS}")
    if obj["task"] not in TASKS:
        raise RecordError(f"{where}: field 'task' = {obj['task']!r}, expected one of {TASKS}")
    if not math.isfinite(float(obj["value"])):
        raise RecordError(f"{where}: field 'value' = {obj['value']!r} is not finite")
    for k in ("run_id", "arch", "metric", "dataset"):
        if not obj[k]:
            raise RecordError(f"{where}: field {k!r} is empty")
    return obj


def utc_now() -> str:
    """ISO-8601 UTC timestamp with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def new_run_id(prefix: str = "run") -> str:
    """A unique, sortable run id: prefix, UTC time, random suffix."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def config_hash(cfg: dict | str) -> str:
    """Short sha256 of a config's canonical JSON (or of its text), so equal configs hash equal."""
    text = cfg if isinstance(cfg, str) else json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a result, plus Python's."""
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            continue
    return out


def records_for_run(
    info,
    task: str,
    protocol: str,
    dataset: str,
    split: str,
    metrics: dict[str, float],
    cfg: dict | str,
    seed: int | None,
    extra: dict | None = None,
    run_prefix: str = "run",
) -> list[ResultRecord]:
    """One record per metric of one evaluation run (shared run id), with the encoder's provenance.

    `info` is the `EncoderInfo` that `tokes_bench.models.load_encoder` returned.
    """
    run_id = new_run_id(run_prefix)
    return [
        ResultRecord(
            run_id=run_id, method=info.method, arch=info.arch, encoder_path=info.path,
            encoder_sha256=info.sha256, pretrain_epochs=info.pretrain_epochs, task=task, protocol=protocol,
            dataset=dataset, split=split, metric=name, value=float(value), config_hash=config_hash(cfg),
            seed=seed, extra=dict(extra or {}),
        )
        for name, value in metrics.items()
    ]


def append_records(path: str | os.PathLike, records: Iterable[ResultRecord]) -> Path:
    """Append records to a JSON-lines file in one locked, single write.

    An exclusive flock plus one O_APPEND write means concurrent writers never interleave or lose
    lines, and a crash leaves either all of this batch or none of it (no partial line is ever
    visible to a reader holding the shared lock).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(r.to_json() + "\n" for r in records).encode()
    if not payload:
        return path
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(payload)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return path


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record dict) for each non-blank line; malformed lines raise RecordError."""
    path = Path(path)
    with open(path, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        try:
            data = f.read()
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    for lineno, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise RecordError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
        yield lineno, validate(obj, where)


def read_records(path: str | os.PathLike) -> list[dict]:
    """All records of one file, each with `_file` and `_line` added for provenance."""
    return [{**rec, "_file": str(path), "_line": n} for n, rec in iter_records(path)]
