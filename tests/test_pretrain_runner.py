"""End-to-end pretraining through mmengine: resume after kill -9, torchrun vs one process, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image

from tokes_bench.data.digits import digits_arrays
from tokes_bench.data.imagefolder import CorruptImageError
from tokes_bench.models.encoder_io import read_encoder_file
from tokes_bench.pretrain.base import NonFiniteLossError
from tokes_bench.pretrain.data import PretrainImageFolder
from tokes_bench.pretrain.hooks import load_run_checkpoint
from tokes_bench.pretrain.mae import MaePretrainModel
from tokes_bench.pretrain.runner import load_config, pretrain
from tokes_bench.pretrain.visualize import visualize

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "pretrain"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """48 digits at 32 px in two classes: 6 iterations per epoch at batch 8."""
    root = tmp_path_factory.mktemp("tiny_digits")
    imgs, labels = digits_arrays(32)
    for i in range(48):
        folder = root / "train" / str(int(labels[i]) % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(imgs[i]).save(folder / f"{i:03d}.png")
    return root


def tiny_options(data_root: Path, epochs: int, batch: int = 8) -> list[str]:
    """A 32 px, 1-block-decoder version of a demo config, logging and checkpointing every step/epoch."""
    return [
        f"data_root={data_root}", "demo_digits=None", "model.img_size=32", "train_dataloader.dataset.img_size=32",
        "model.decoder_dim=32", "model.decoder_depth=1", "model.decoder_heads=2",
        f"train_dataloader.batch_size={batch}", f"train_cfg.max_epochs={epochs}",
        "param_scheduler.0.end=1", "param_scheduler.1.begin=1", f"param_scheduler.1.end={epochs}",
        f"param_scheduler.1.T_max={epochs - 1}", "default_hooks.checkpoint.interval=1",
        "default_hooks.checkpoint.max_keep_ckpts=20", "default_hooks.logger.interval=1", "log_processor.window_size=1",
    ]


def cli(config: str, work_dir: Path, options: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "tokes_bench.cli", "pretrain", str(CONFIGS / config),
            "--work-dir", str(work_dir), *extra, "--cfg-options", *options]


def final_weights(work_dir: Path, epochs: int) -> dict:
    return load_run_checkpoint(work_dir / f"epoch_{epochs}.pth")["state_dict"]


def loss_curve(work_dir: Path) -> list[float]:
    files = sorted(work_dir.glob("*/vis_data/scalars.json"))
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    by_step = {d["step"]: d["loss"] for d in lines if "loss" in d}
    return [by_step[k] for k in sorted(by_step)]


EPOCHS = 4  # x 6 steps


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, tiny_folder) -> Path:
    """One uninterrupted single-process TOKES run (batch 8), the reference of two tests."""
    work = tmp_path_factory.mktemp("straight")
    subprocess.run(cli("tokes_vit-t-16_demo.py", work, tiny_options(tiny_folder, EPOCHS)), env=ENV, check=True,
                   capture_output=True)
    return work


@pytest.mark.slow
def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path, tiny_folder, straight_run):
    epochs = EPOCHS
    opts = tiny_options(tiny_folder, epochs)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli("tokes_vit-t-16_demo.py", killed, opts), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "epoch_1.pth").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / f"epoch_{epochs}.pth").exists()
    subprocess.run(cli("tokes_vit-t-16_demo.py", killed, opts, "--resume"), env=ENV, check=True,
                   capture_output=True)
    a, b = final_weights(straight_run, epochs), final_weights(killed, epochs)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert int(b["num_steps"]) == epochs * 6


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path, tiny_folder, straight_run):
    """Same global batch (2 x 4 vs 1 x 8): same images, pairs and swaps per step, so the global loss
    curves agree up to float reduction order (measured: 2e-7); tolerance 1e-4 absolute on losses near 1."""
    epochs = EPOCHS
    one, two = straight_run, tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tokes_bench.cli", "pretrain", str(CONFIGS / "tokes_vit-t-16_demo.py"), "--work-dir", str(two),
           "--launcher", "pytorch", "--cfg-options", *tiny_options(tiny_folder, epochs, batch=4)]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    c1, c2 = loss_curve(one), loss_curve(two)
    assert len(c1) == len(c2) == epochs * 6
    assert max(abs(x - y) for x, y in zip(c1, c2, strict=True)) < 1e-4, (c1, c2)
    assert c1[-1] < c1[0]


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_folder, monkeypatch):
    calls = {"n": 0}
    original = MaePretrainModel.loss

    def poisoned(self, imgs):
        calls["n"] += 1
        out = original(self, imgs)
        if calls["n"] == 9:  # second epoch (6 steps per epoch)
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(MaePretrainModel, "loss", poisoned)
    work = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss.*last good checkpoint: .*epoch_1\.pth"):
        pretrain(CONFIGS / "mae_vit-t-16_demo.py", work, tiny_options(tiny_folder, 3))
    assert not (work / "epoch_2.pth").exists()
    good = load_run_checkpoint(work / "epoch_1.pth")
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.is_floating_point())
    # A run checkpoint exports to an encoder timm loads strictly at the run's resolution.
    from tokes_bench.pretrain.export import export_encoder

    weights, meta = read_encoder_file(export_encoder(work / "epoch_1.pth", tmp_path / "enc.safetensors"))
    timm.create_model(meta["arch"], num_classes=0, img_size=32).load_state_dict(weights, strict=True)
    assert (meta["method"], meta["epochs"], meta["images_seen"], meta["img_size"]) == ("mae", "1", "48", "32")
    # ... and visualises: 4 rows of (original | masked input | reconstruction), 32 px shown at 4x.
    grid = visualize(work / "epoch_1.pth", tiny_folder, tmp_path / "grid.png", num=4)
    assert Image.open(grid).size == (3 * 128 + 8, 4 * 128 + 6)


def test_corrupt_image_fails_naming_it_or_is_skipped_and_counted(tmp_path, tiny_folder):
    root = tmp_path / "data"
    (root / "train" / "0").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(root / "train" / "0" / "a.png")
    bad = root / "train" / "0" / "b.png"
    bad.write_bytes(b"not a png")
    ds = PretrainImageFolder(str(root), img_size=32, on_corrupt="fail")
    with pytest.raises(CorruptImageError, match="b.png"):
        ds[(1, 0)]
    ds = PretrainImageFolder(str(root), img_size=32, on_corrupt="skip")
    assert ds[(1, 0)]["inputs"].shape == (3, 32, 32)
    assert ds.skipped == [str(bad)]


def test_seeded_augmentation_is_reproducible(tiny_folder):
    ds = PretrainImageFolder(str(tiny_folder), img_size=32, crop_scale=(0.2, 1.0))
    a, b, c = ds[(3, 7)]["inputs"], ds[(3, 7)]["inputs"], ds[(3, 8)]["inputs"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_config_keys_and_arch_are_clear_errors():
    cfg = CONFIGS / "tokes_vit-t-16_demo.py"
    with pytest.raises(KeyError, match="unknown config key 'train_cfg.max_epoch'.*max_epochs"):
        load_config(cfg, ["train_cfg.max_epoch=3"])
    with pytest.raises(KeyError, match=r"unknown model option\(s\) \['swap_ratoi'\]"):
        load_config(cfg, {"model.swap_ratoi": 0.3})
    with pytest.raises(ValueError, match="unknown encoder arch 'vit_gigantic'"):
        load_config(cfg, {"model.arch": "vit_gigantic"})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(CONFIGS / "nope.py")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.py")), ids=lambda p: p.name)
def test_every_config_loads_and_lr_follows_mae_rule(path, tmp_path):
    from tokes_bench.pretrain.runner import _finalise

    cfg = load_config(path)
    letter = path.name.split("_vit-")[1][0]
    names = {"t": "vit_tiny", "s": "vit_small", "b": "vit_base", "l": "vit_large"}
    assert cfg.model.arch == names[letter] + "_patch16_224"
    assert cfg.model.img_size == cfg.train_dataloader.dataset.img_size
    cfg.data_root = str(tmp_path)
    _finalise(cfg, tmp_path, "none", world=8)  # 8 processes, accumulation 1
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(cfg.blr * cfg.train_dataloader.batch_size * 8 / 256)
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95) and cfg.optim_wrapper.optimizer.weight_decay == 0.05
