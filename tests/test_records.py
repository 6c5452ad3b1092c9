"""Result records: schema validation, atomic concurrent appends, strict reading."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys

import pytest

from tokes_bench.results.records import (
    RecordError,
    ResultRecord,
    append_records,
    config_hash,
    read_records,
)


def _record(i: int = 0, **over) -> ResultRecord:
    fields = dict(
        run_id=f"run-{i}", method="tokes", arch="vit_tiny_patch16_224", encoder_path="enc.safetensors",
        encoder_sha256="ab" * 32, pretrain_epochs=10, task="classification", protocol="linear",
        dataset="digits", split="val", metric="top1", value=50.0 + i % 7, config_hash="c0ffee", seed=i,
    )
    fields.update(over)
    return ResultRecord(**fields)


def test_record_round_trip_has_provenance(tmp_path) -> None:
    path = append_records(tmp_path / "r.jsonl", [_record(1), _record(2, metric="top5", value=90.0)])
    recs = read_records(path)
    assert [r["metric"] for r in recs] == ["top1", "top5"]
    assert recs[0]["versions"]["torch"] and recs[0]["versions"]["python"]
    assert recs[0]["time_utc"].endswith("Z") and recs[1]["_line"] == 2


@pytest.mark.parametrize(
    "over, msg",
    [
        (dict(method="byol"), "method"),
        (dict(task="depth"), "task"),
        (dict(value=float("nan")), "value"),
        (dict(seed="3"), "seed"),
        (dict(metric=""), "metric"),
    ],
)
def test_invalid_records_are_rejected_naming_the_field(over, msg) -> None:
    with pytest.raises(RecordError, match=msg):
        _record(**over)


def test_malformed_lines_name_file_and_line(tmp_path) -> None:
    path = append_records(tmp_path / "r.jsonl", [_record(1)])
    with open(path, "a") as f:
        f.write("\n{not json}\n")
    with pytest.raises(RecordError, match=r"r\.jsonl:3: not valid JSON"):
        read_records(path)
    good = json.loads(path.read_text().splitlines()[0])
    del good["metric"]
    path.write_text(json.dumps(good) + "\n")
    with pytest.raises(RecordError, match=r"r\.jsonl:1: missing field\(s\) \['metric'\]"):
        read_records(path)


def _writer(path: str, offset: int, n: int) -> None:
    for i in range(n):
        append_records(path, [_record(offset + i, extra={"pad": "x" * (i % 50) * 100})])


def test_two_processes_appending_lose_nothing(tmp_path) -> None:
    path = str(tmp_path / "shared.jsonl")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, k * 1000, 1000)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    recs = read_records(path)
    assert len(recs) == 2000
    assert sorted(int(r["run_id"].split("-")[1]) for r in recs) == list(range(2000))


def test_config_hash_is_order_independent() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_cli_help_lists_real_subcommands_and_env_reports_ops() -> None:
    out = subprocess.run([sys.executable, "-m", "tokes_bench.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "env" in out.stdout
    env = subprocess.run([sys.executable, "-m", "tokes_bench.cli", "env", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert env.returncode == 0, env.stderr[-2000:]
    info = json.loads(env.stdout)
    for key in ("torch", "timm", "mmengine", "mmcv", "mmdet", "mmseg", "device"):
        assert info[key]
    assert "provided by tokes-bench" in info["mmcv"] or "compiled" in info["mmcv"]
