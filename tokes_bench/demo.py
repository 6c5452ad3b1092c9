"""The end-to-end demo on embedded data: pretrain TOKES and MAE, evaluate them and the random floor, rank.

Every step is the same `tokes-bench` subcommand a user would run, called in this process, so the
demo exercises exactly the public paths: config -> pretrain -> export -> eval -> records -> leaderboard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokes_bench.data.digits import write_digits_imagefolder

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
ARCH = "vit_tiny_patch16_224"
METHODS = ("tokes", "mae")
logger = logging.getLogger("tokes_bench.demo")


@dataclass
class DemoPlan:
    """What the demo runs; `quick` trims epochs so the whole demo fits a CI test."""

    work_dir: Path
    out_dir: Path
    seeds: tuple[int, ...] = (0,)
    quick: bool = False
    finetune: bool = True
    vost: bool = True

    def config(self, rel: str) -> str:
        path = CONFIG_ROOT / rel
        if not path.is_file():
            raise FileNotFoundError(
                f"demo config {path} not found; run the demo from a source checkout (pip install -e .)"
            )
        return str(path)


def _last_checkpoint(run_dir: Path) -> Path:
    from tokes_bench.pretrain.runner import last_checkpoint

    ckpt = last_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"pretraining run {run_dir} left no checkpoint")
    return ckpt


def build_steps(plan: DemoPlan) -> list[tuple[str, list[str] | Callable[[], list[str]]]]:
    """The ordered (title, argv) list of subcommands the demo runs; an argv may be computed when its turn comes."""
    w = plan.work_dir
    digits = w / "data" / "digits"
    results = str(w / "results.jsonl")
    quick_pre = ["train_cfg.max_epochs=1"] if plan.quick else []
    steps: list[tuple[str, list[str] | Callable[[], list[str]]]] = []
    encoders = {"random": f"random:{ARCH}"}
    for method in METHODS:
        run_dir = w / f"pretrain_{method}"
        opts = [f"data_root={digits}", *quick_pre]
        steps.append((f"pretrain {method}", ["pretrain", plan.config(f"pretrain/{method}_vit-t-16_demo.py"),
                                             "--work-dir", str(run_dir), "--cfg-options", *opts]))
        encoders[method] = str(run_dir / "encoder.safetensors")
        steps.append((f"reconstructions {method}", lambda run_dir=run_dir, method=method: [
            "visualize", str(_last_checkpoint(run_dir)), "--images", str(digits / "val"),
            "-o", str(plan.out_dir / f"reconstructions_{method}.png"), "--num", "8"]))
    protocols = ["linear", "knn"] + (["finetune"] if plan.finetune else [])
    quick_eval = {"linear": ["epochs=10"], "finetune": ["epochs=1"], "knn": []}
    for name, enc in encoders.items():
        for protocol in protocols:
            for seed in plan.seeds:
                argv = ["eval", protocol, "--encoder", enc, "--data", str(digits),
                        "--config", plan.config(f"classification/{protocol}_vit-t-16_digits_demo.py"),
                        "--work-dir", str(w / "eval" / name / f"{protocol}_seed{seed}"), "--seed", str(seed),
                        "--results", results]
                if plan.quick and quick_eval[protocol]:
                    argv += ["--cfg-options", *quick_eval[protocol]]
                steps.append((f"{protocol} probe of {name} (seed {seed})", argv))
        if plan.vost:
            steps.append((f"VOST propagation of {name}", [
                "eval", "vost", "--encoder", enc, "--demo", "--data-root", str(w / "data" / "vost-demo"),
                "--work-dir", str(w / "eval" / name / "vost"), "--results", results]))
    steps.append(("leaderboard", ["leaderboard", "--results", results, "--out", str(plan.out_dir), "--html"]))
    return steps


def run_demo(plan: DemoPlan) -> Path:
    """Run every step, logging progress with elapsed time and ETA; return the leaderboard folder."""
    from tokes_bench.cli import main

    plan.work_dir.mkdir(parents=True, exist_ok=True)
    write_digits_imagefolder(plan.work_dir / "data" / "digits", size=64)
    results = plan.work_dir / "results.jsonl"
    if results.exists():
        stale = results.with_name(f"results.{time.strftime('%Y%m%dT%H%M%S')}.jsonl.old")
        results.rename(stale)
        logger.info("previous demo records kept as %s", stale)
    steps = build_steps(plan)
    start = time.monotonic()
    for i, (title, argv) in enumerate(steps, start=1):
        elapsed = time.monotonic() - start
        eta = f"{elapsed / (i - 1) * (len(steps) - i + 1):.0f}s" if i > 1 else "?"
        logger.info("[demo %d/%d] %s (elapsed %.0fs, ETA %s)", i, len(steps), title, elapsed, eta)
        argv = argv() if callable(argv) else argv
        code = main(argv)
        if code:
            raise RuntimeError(f"demo step {i} ({title}) failed with exit code {code}: tokes-bench {' '.join(argv)}")
    logger.info("demo finished in %.0fs; leaderboard in %s", time.monotonic() - start, plan.out_dir)
    return plan.out_dir
