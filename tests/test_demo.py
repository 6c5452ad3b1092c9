"""The demo end to end (quick settings): every public step runs and the leaderboard holds all three encoders."""

from __future__ import annotations

import pandas as pd
import pytest

from tokes_bench.cli import main
from tokes_bench.demo import DemoPlan, build_steps
from tokes_bench.results.records import read_records


def test_demo_plan_runs_every_public_step(tmp_path) -> None:
    titles = [t for t, _ in build_steps(DemoPlan(work_dir=tmp_path, out_dir=tmp_path / "lb", seeds=(0, 1)))]
    assert titles[:4] == ["pretrain tokes", "reconstructions tokes", "pretrain mae", "reconstructions mae"]
    for enc in ("random", "tokes", "mae"):
        for protocol in ("linear", "knn", "finetune"):
            assert f"{protocol} probe of {enc} (seed 1)" in titles
        assert f"VOST propagation of {enc}" in titles
    assert titles[-1] == "leaderboard"


@pytest.mark.slow
def test_quick_demo_writes_leaderboard_for_three_encoders(tmp_path) -> None:
    out = tmp_path / "leaderboards"
    assert main(["demo", "--quick", "--no-finetune", "--work-dir", str(tmp_path / "w"), "--out", str(out)]) == 0
    records = read_records(tmp_path / "w" / "results.jsonl")
    methods = {(r["method"], r["protocol"], r["metric"]) for r in records}
    for method in ("tokes", "mae", "random"):
        for protocol, metric in (("linear", "top1"), ("knn", "top1"), ("vost", "J"), ("vost", "J_tr")):
            assert (method, protocol, metric) in methods
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["method"]) >= {"tokes", "mae", "random"}
    comparison = pd.read_csv(out / "comparison.csv")
    assert {"classification", "vost"} <= set(comparison["task"])
    for name in ("classification.csv", "vost.csv", "leaderboard.md", "leaderboard.png", "leaderboard.html",
                 "reconstructions_tokes.png", "reconstructions_mae.png"):
        assert (out / name).stat().st_size > 0, name
