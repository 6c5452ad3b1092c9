"""Leaderboard: exact CSV values from hand-made records, bootstrap intervals, errors, atomicity."""

from __future__ import annotations

import contextlib
import io
import json
import math
import multiprocessing
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tokes_bench.cli import main
from tokes_bench.results import atomic
from tokes_bench.results.leaderboard import LeaderboardError, build_leaderboard, write_leaderboard
from tokes_bench.results.records import ResultRecord, append_records
from tokes_bench.results.stats import bootstrap_diff_ci, bootstrap_mean_ci, mean_std

ARCH = "vit_tiny_patch16_224"
T, M, R, T2 = "a" * 64, "b" * 64, "c" * 64, "d" * 64
ENCODERS = {T: ("tokes", 10), M: ("mae", 10), R: ("random", None), T2: ("tokes", 20)}
N_BOOT = 2000


def rec(run, sha, task, protocol, dataset, metric, value, seed, split="val", arch=ARCH, enc=None):
    method, epochs = enc or ENCODERS[sha]
    return ResultRecord(
        run_id=run,
        method=method,
        arch=arch,
        encoder_path=f"/enc/{sha[:4]}.safetensors",
        encoder_sha256=sha,
        pretrain_epochs=epochs,
        task=task,
        protocol=protocol,
        dataset=dataset,
        split=split,
        metric=metric,
        value=value,
        config_hash=f"cfg-{protocol}",
        seed=seed,
        versions={"python": "3.11.2", "torch": "2.14.1"},
        time_utc="2026-12-03T00:00:00Z",
    )


def write_handmade(root: Path) -> Path:
    """The hand-made record set (values chosen so means/stds are easy to verify by hand)."""
    cls = ("classification", "linear", "digits")
    recs = []
    for s, top1, top5 in [(0, 79, 95), (1, 82, 96), (2, 84, 97)]:
        recs += [rec(f"lt{s}", T, *cls, "top1", top1, s), rec(f"lt{s}", T, *cls, "top5", top5, s)]
    recs.append(rec("lt0b", T, *cls, "top1", 81, 0))  # a re-run of seed 0: seed 0 averages to 80
    for s, top1 in [(0, 78), (1, 79), (2, 83)]:
        recs += [rec(f"lm{s}", M, *cls, "top1", top1, s), rec(f"lm{s}", M, *cls, "top5", 94, s)]
    recs += [rec("lr0", R, *cls, "top1", 20, 0), rec("lt2x", T2, *cls, "top1", 85, 0)]
    recs += [
        rec("ft0", T, "classification", "finetune", "digits", "top1", 90, 0),
        rec("fm1", M, "classification", "finetune", "digits", "top1", 88, 1),
    ]
    for sha, rows in ((T, [(0, 60, 50), (1, 62, 54)]), (M, [(0, 58, 49), (1, 59, 50)])):
        for s, j, jtr in rows:
            recs += [
                rec(f"v{sha[0]}{s}", sha, "vost", "vost", "vost-demo", "J", j, s),
                rec(f"v{sha[0]}{s}", sha, "vost", "vost", "vost-demo", "J_tr", jtr, s),
            ]
    recs.append(rec("pt", T, "pretrain", "tokes", "digits", "loss", 0.5, 0, split="train"))
    append_records(root / "a.jsonl", recs)
    append_records(root / "sub" / "b.jsonl", [rec("lm0", M, *cls, "top1", 78, 0)])  # exact duplicate
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The CLI run once over the hand-made records: (results dir, out dir, stdout)."""
    res = write_handmade(tmp_path_factory.mktemp("records"))
    out = tmp_path_factory.mktemp("lb")
    buf = io.StringIO()
    sys_stdout, sys.stdout = sys.stdout, buf
    try:
        rc = main(["leaderboard", "--results", str(res), "--out", str(out), "--n-boot", str(N_BOOT)])
    finally:
        sys.stdout = sys_stdout
    assert rc == 0
    return res, out, buf.getvalue()


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def num(cell: str) -> float:
    return float(cell) if cell != "" else math.nan


def assert_cells(df: pd.DataFrame, expected: list[dict]) -> None:
    """Row by row, column by column: strings equal, numbers within the CSV's 6-decimal rounding."""
    assert len(df) == len(expected)
    for i, exp in enumerate(expected):
        for col, want in exp.items():
            got = df.loc[i, col]
            if isinstance(want, float):
                if math.isnan(want):
                    assert got == "", (i, col, got)
                else:
                    assert num(got) == pytest.approx(want, abs=1e-6), (i, col, got, want)
            else:
                assert got == str(want), (i, col, got, want)


def test_outputs_and_log(built):
    _, out, log = built
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "classification.csv",
        "comparison.csv",
        "leaderboard.md",
        "leaderboard.png",
        "summary.csv",
        "vost.csv",
    ]
    assert "detection.csv: not written, no detection records" in log
    assert "segmentation.csv: not written, no segmentation records" in log
    assert "1 exact duplicates counted once" in log and "1 non-evaluation records skipped" in log


def test_classification_csv_exact(built):
    df = read_csv(built[1] / "classification.csv")
    nan = math.nan
    enc = ["source", "method", "pretrain_epochs", "encoder_sha256", "protocol", "dataset", "split"]
    rows = [
        ("computed", "tokes", 10, T, "finetune", "digits", "val", 90.0, nan, nan, nan, 1, "0", 1),
        ("computed", "mae", 10, M, "finetune", "digits", "val", 88.0, nan, nan, nan, 1, "1", 1),
        ("published", "mae", 1600, "", "finetune", "imagenet-1k", "val", 83.6, nan, nan, nan, "", "", ""),
        ("computed", "tokes", 20, T2, "linear", "digits", "val", 85.0, nan, nan, nan, 1, "0", 1),
        ("computed", "tokes", 10, T, "linear", "digits", "val", 82.0, 2.0, 96.0, 1.0, 3, "0;1;2", 4),
        ("computed", "mae", 10, M, "linear", "digits", "val", 80.0, math.sqrt(7), 94.0, 0.0, 3, "0;1;2", 3),
        ("computed", "random", "", R, "linear", "digits", "val", 20.0, nan, nan, nan, 1, "0", 1),
        ("published", "mae", 1600, "", "linear", "imagenet-1k", "val", 68.0, nan, nan, nan, "", "", ""),
    ]
    cols = [*enc, "top1", "top1_std", "top5", "top5_std", "n_seeds", "seeds", "n_runs"]
    assert_cells(df, [dict(zip(cols, r, strict=True)) for r in rows])
    assert list(df.columns) == [
        *enc[:2],
        "arch",
        *enc[2:],
        "top1",
        "top1_std",
        "top5",
        "top5_std",
        "n_seeds",
        "seeds",
        "n_runs",
        "config_hash",
        "versions",
        "encoder_path",
        "citation",
    ]
    computed = df[df["source"] == "computed"]
    assert set(computed["arch"]) == {ARCH}
    assert set(computed["versions"]) == {"python=3.11.2;torch=2.14.1"}
    assert list(computed["config_hash"]) == ["cfg-finetune"] * 2 + ["cfg-linear"] * 4
    assert list(computed["citation"]) == [""] * 6
    published = df[df["source"] == "published"]
    assert all(
        c.startswith("He et al. 2022, Masked Autoencoders Are Scalable Vision Learners") for c in published["citation"]
    )


def test_vost_csv_exact(built):
    df = read_csv(built[1] / "vost.csv")
    cols = ["method", "encoder_sha256", "dataset", "J", "J_std", "J_tr", "J_tr_std", "n_seeds", "seeds"]
    assert_cells(
        df,
        [
            dict(zip(cols, ("tokes", T, "vost-demo", 61.0, math.sqrt(2), 52.0, math.sqrt(8), 2, "0;1"), strict=True)),
            dict(zip(cols, ("mae", M, "vost-demo", 58.5, math.sqrt(0.5), 49.5, math.sqrt(0.5), 2, "0;1"), strict=True)),
        ],
    )


def test_summary_csv_exact_and_rank_rule(built):
    df = read_csv(built[1] / "summary.csv")
    cols = [
        "source",
        "rank",
        "method",
        "pretrain_epochs",
        "linear_top1@digits/val",
        "linear_top1@imagenet-1k/val",
        "finetune_top1@digits/val",
        "finetune_top1@imagenet-1k/val",
        "vost_J@vost-demo/val",
        "vost_J_tr@vost-demo/val",
        "n_headline",
        "rank_score",
    ]
    nan = math.nan
    # ranks per column (1 = best): linear T2 1, T 2, M 3, R 4; finetune/J/J_tr: T 1, M 2.
    rows = [
        ("computed", 1, "tokes", 10, 82.0, nan, 90.0, nan, 61.0, 52.0, 4, (2 + 1 + 1 + 1) / 4),
        ("computed", 2, "mae", 10, 80.0, nan, 88.0, nan, 58.5, 49.5, 4, (3 + 2 + 2 + 2) / 4),
        ("computed", 3, "tokes", 20, 85.0, nan, nan, nan, nan, nan, 1, 1.0),
        ("computed", 4, "random", "", 20.0, nan, nan, nan, nan, nan, 1, 4.0),
        ("published", "", "mae", 1600, nan, 68.0, nan, 83.6, nan, nan, 2, nan),
    ]
    assert_cells(df, [dict(zip(cols, r, strict=True)) for r in rows])
    assert [c for c in df.columns if "@" in c] == cols[4:10]


def _independent_ci(diffs, key: str, seed: int = 0, n_boot: int = N_BOOT) -> tuple[float, float]:
    """Paired percentile bootstrap written out by hand (rng seeded as docs/leaderboard.md says)."""
    d = np.asarray(diffs, dtype=float)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    means = np.sort(d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1))

    def pct(q):
        pos = q * (n_boot - 1)
        lo = int(math.floor(pos))
        return means[lo] + (means[min(lo + 1, n_boot - 1)] - means[lo]) * (pos - lo)

    return pct(0.025), pct(0.975)


def test_comparison_csv_exact(built):
    df = read_csv(built[1] / "comparison.csv")
    key_cols = ["task", "protocol", "dataset", "split", "metric", "arch", "pretrain_epochs"]
    rows = [
        ("classification", "finetune", "digits", "top1", 90.0, math.nan, 88.0, math.nan, None),
        ("classification", "linear", "digits", "top1", 82.0, 2.0, 80.0, math.sqrt(7), [2, 3, 1]),
        ("classification", "linear", "digits", "top5", 96.0, 1.0, 94.0, 0.0, [1, 2, 3]),
        ("vost", "vost", "vost-demo", "J", 61.0, math.sqrt(2), 58.5, math.sqrt(0.5), [2, 3]),
        ("vost", "vost", "vost-demo", "J_tr", 52.0, math.sqrt(8), 49.5, math.sqrt(0.5), [1, 4]),
    ]
    assert len(df) == len(rows)
    for i, (task, protocol, dataset, metric, tm, ts, mm, ms, diffs) in enumerate(rows):
        r = df.loc[i]
        assert [r[c] for c in key_cols] == [task, protocol, dataset, "val", metric, ARCH, "10"]
        assert (r["tokes_sha256"], r["mae_sha256"]) == (T, M)
        assert num(r["tokes_mean"]) == pytest.approx(tm) and num(r["mae_mean"]) == pytest.approx(mm)
        assert num(r["diff"]) == pytest.approx(tm - mm)
        for col, want in (("tokes_std", ts), ("mae_std", ms)):
            assert (r[col] == "") if math.isnan(want) else num(r[col]) == pytest.approx(want, abs=1e-6)
        assert r["n_boot"] == str(N_BOOT)
        if diffs is None:  # one seed each, different seeds: no interval, and the note says why
            assert (r["ci_low"], r["ci_high"], r["ci_method"], r["n_pairs"]) == ("", "", "", "0")
            assert "one seed for tokes: no interval" in r["note"] and "seeds not matched" in r["note"]
            continue
        assert np.mean(diffs) == pytest.approx(tm - mm)
        key = "|".join([task, protocol, dataset, "val", metric, ARCH, "10", T, M])
        lo, hi = _independent_ci(diffs, key)
        assert (num(r["ci_low"]), num(r["ci_high"])) == (pytest.approx(lo, abs=1e-6), pytest.approx(hi, abs=1e-6))
        assert min(diffs) <= lo <= hi <= max(diffs)
        assert r["ci_method"] == "paired bootstrap" and r["n_pairs"] == str(len(diffs))


def test_markdown_renders_same_frames(built):
    md = (built[1] / "leaderboard.md").read_text()
    assert "| computed | 1 | tokes | vit_tiny_patch16_224 | 10 | aaaaaaaaaaaa | 82.00 |" in md
    assert "## Classification" in md and "## Video object segmentation" in md and "## Detection" not in md
    assert "| vost | vost | vost-demo | val | J_tr | vit_tiny_patch16_224 | 10 |" in md
    assert "![leaderboard chart](leaderboard.png)" in md


def test_png_is_a_chart(built):
    from PIL import Image

    with Image.open(built[1] / "leaderboard.png") as im:
        assert im.format == "PNG" and im.width > 500 and im.height > 500


def test_bootstrap_paired_matches_independent_and_closed_form():
    rng = np.random.default_rng(123)
    a = rng.normal(70.0, 2.0, size=40)
    b = a - rng.normal(1.5, 1.0, size=40)
    lo, hi = bootstrap_diff_ci(a, b, paired=True, n_boot=20000, rng=np.random.default_rng(7))
    d = a - b
    boot = d[np.random.default_rng(7).integers(0, 40, size=(20000, 40))].mean(axis=1)
    ref = np.sort(boot)
    assert lo == pytest.approx(
        ref[int(0.025 * 19999)] + (ref[int(0.025 * 19999) + 1] - ref[int(0.025 * 19999)]) * (0.025 * 19999 % 1),
        abs=1e-12,
    )
    # Normal theory for the mean of 40 values: mean +- 1.96 * sd(ddof=0) / sqrt(n).
    half = 1.959964 * d.std(ddof=0) / math.sqrt(40)
    assert lo == pytest.approx(d.mean() - half, abs=0.08 * half)
    assert hi == pytest.approx(d.mean() + half, abs=0.08 * half)


def test_bootstrap_unpaired_closed_form_and_one_seed():
    rng = np.random.default_rng(5)
    a, b = rng.normal(60, 3, size=50), rng.normal(58, 2, size=30)
    lo, hi = bootstrap_diff_ci(a, b, paired=False, n_boot=20000, rng=np.random.default_rng(1))
    half = 1.959964 * math.sqrt(a.var() / 50 + b.var() / 30)
    diff = a.mean() - b.mean()
    assert (lo, hi) == (pytest.approx(diff - half, abs=0.08 * half), pytest.approx(diff + half, abs=0.08 * half))
    for x, y, paired in (([1.0], [2.0], True), ([1.0], [2.0, 3.0], False), ([1.0, 2.0], [3.0], False)):
        assert all(math.isnan(v) for v in bootstrap_diff_ci(x, y, paired, 100, np.random.default_rng(0)))
    assert all(math.isnan(v) for v in bootstrap_mean_ci([5.0], 100, np.random.default_rng(0)))
    assert mean_std([5.0])[0] == 5.0 and math.isnan(mean_std([5.0])[1])


def test_published_rows_never_enter_statistics(tmp_path):
    base = ("classification", "finetune", "imagenet-1k", "top1")
    enc_t, enc_m = ("tokes", 1600), ("mae", 1600)
    recs = [rec(f"t{s}", "e" * 64, *base, v, s, arch="vit_base_patch16_224", enc=enc_t) for s, v in [(0, 84), (1, 86)]]
    recs += [rec(f"m{s}", "f" * 64, *base, v, s, arch="vit_base_patch16_224", enc=enc_m) for s, v in [(0, 82), (1, 83)]]
    append_records(tmp_path / "r.jsonl", recs)
    lb = build_leaderboard([tmp_path], n_boot=500)
    (row,) = lb.comparison.itertuples()
    assert (row.tokes_mean, row.mae_mean, row.mae_n, row.diff) == (85.0, 82.5, 2, 2.5)
    table = lb.tasks["classification"]
    assert sorted(zip(table["source"], table["top1"], strict=True)) == [
        ("computed", 82.5),
        ("computed", 85.0),
        ("published", 68.0),
        ("published", 83.6),
    ]
    assert [None if pd.isna(x) else int(x) for x in lb.summary["rank"]] == [1, 2, None]
    assert list(lb.summary["source"]) == ["computed", "computed", "published"]


def test_published_reference_file():
    doc = json.loads((Path(__file__).parents[1] / "tokes_bench/results/published.json").read_text())
    got = {(r["task"], r["protocol"], r["metric"]): r for r in doc["rows"]}
    want = {
        ("classification", "finetune", "top1"): (83.6, "He et al. 2022"),
        ("classification", "linear", "top1"): (68.0, "He et al. 2022"),
        ("detection", "vitdet-maskrcnn", "bbox_mAP"): (51.6, "Li et al. 2022"),
        ("detection", "vitdet-maskrcnn", "segm_mAP"): (45.9, "Li et al. 2022"),
        ("segmentation", "upernet", "mIoU"): (48.1, "He et al. 2022"),
    }
    assert set(got) == set(want)
    for k, (value, cite) in want.items():
        assert got[k]["value"] == value and got[k]["citation"].startswith(cite)
        assert (got[k]["arch"], got[k]["pretrain_epochs"], got[k]["method"]) == ("vit_base_patch16_224", 1600, "mae")
    assert "48.13" in got[("segmentation", "upernet", "mIoU")]["citation"]


def test_conflicting_records_name_both_lines(tmp_path, capsys):
    append_records(
        tmp_path / "x.jsonl",
        [
            rec("r1", T, "vost", "vost", "vost-demo", "J", 60, 0),
            rec("r1", T, "vost", "vost", "vost-demo", "J_tr", 50, 0),
        ],
    )
    append_records(tmp_path / "y.jsonl", [rec("r1", T, "vost", "vost", "vost-demo", "J_tr", 51, 0)])
    with pytest.raises(LeaderboardError) as e:
        build_leaderboard([tmp_path])
    msg = str(e.value)
    assert f"{tmp_path / 'x.jsonl'}:2" in msg and f"{tmp_path / 'y.jsonl'}:1" in msg and "'J_tr'" in msg
    assert main(["leaderboard", "--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "conflicting records" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_results_path_is_a_clean_error(tmp_path, capsys):
    assert main(["leaderboard", "--results", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)]) == 2
    assert "nope.jsonl: no such results file or directory" in capsys.readouterr().err


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_malformed_line_reported_and_old_files_kept(tmp_path, capsys):
    res = write_handmade(tmp_path / "res")
    out = tmp_path / "out"
    assert main(["leaderboard", "--results", str(res), "--out", str(out), "--n-boot", "200"]) == 0
    before = snapshot(out)
    with open(res / "sub" / "b.jsonl", "a") as f:
        f.write('{"run_id": "broken", "method": \n')
    capsys.readouterr()
    assert main(["leaderboard", "--results", str(res), "--out", str(out), "--n-boot", "200"]) == 2
    err = capsys.readouterr().err
    assert f"{res / 'sub' / 'b.jsonl'}:2: not valid JSON" in err
    assert snapshot(out) == before


def test_crash_mid_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    res = write_handmade(tmp_path / "res")
    out = tmp_path / "out"
    lb = build_leaderboard([res], n_boot=200)
    write_leaderboard(lb, out)
    before = snapshot(out)

    def half_then_crash(f, data):
        f.write(data[: len(data) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(atomic, "_write_payload", half_then_crash)
    (out / "vost.csv").unlink()
    with pytest.raises(OSError, match="simulated"):
        write_leaderboard(lb, out, html=True)
    assert not (out / "vost.csv").exists()
    before.pop("vost.csv")
    assert snapshot(out) == before  # classification.csv untouched; no *.tmp left behind


@pytest.mark.slow
def test_two_processes_at_once_leave_valid_files(built, tmp_path):
    """Two forked processes start together (barrier) and each build the same directory twice."""
    res, reference, _ = built
    out = tmp_path / "out"
    argv = ["leaderboard", "--results", str(res), "--out", str(out), "--n-boot", str(N_BOOT), "--html"]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)

    def worker():
        barrier.wait()
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            rc = max(main(argv), main(argv))
        os._exit(rc)

    procs = [ctx.Process(target=worker) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    files = snapshot(out)
    assert sorted(files) == sorted([*snapshot(reference), "leaderboard.html"])
    for name, data in snapshot(reference).items():
        if name != "leaderboard.png":
            assert files[name] == data, name
    from PIL import Image

    with Image.open(out / "leaderboard.png") as im:
        im.verify()
    assert files["leaderboard.html"].rstrip().endswith(b"</html>")


def test_atomic_writer_under_concurrent_writers_and_reader(tmp_path):
    """Two processes rewrite one file 150 times each; a reader only ever sees one whole version."""
    target = tmp_path / "table.csv"
    blobs = [bytes([65 + i]) * 400_000 for i in range(2)]
    atomic.atomic_write_bytes(target, blobs[0])
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)

    def writer(blob):
        barrier.wait()
        try:
            for _ in range(150):
                atomic.atomic_write_bytes(target, blob)
        except BaseException:
            os._exit(1)
        os._exit(0)

    procs = [ctx.Process(target=writer, args=(b,)) for b in blobs]
    for p in procs:
        p.start()
    barrier.wait()
    while any(p.is_alive() for p in procs):
        data = target.read_bytes()
        assert data in blobs, f"torn read: {len(data)} bytes, {len(set(data))} distinct"
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert target.read_bytes() in blobs
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
