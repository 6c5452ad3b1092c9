"""Classification adapter: layer decay, LARS, schedule, kNN and top-k against hand computations,
records and bad-input errors of the three `tokes-bench eval` commands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tokes_bench.adapters.classification.knn import knn_scores
from tokes_bench.adapters.classification.lars import LARS
from tokes_bench.adapters.classification.linear_probe import one_cpu_thread
from tokes_bench.adapters.classification.lr_decay import param_groups_lrd
from tokes_bench.adapters.classification.metrics import topk_accuracy
from tokes_bench.adapters.classification.schedule import cosine_lr
from tokes_bench.cli import main
from tokes_bench.models import build_encoder
from tokes_bench.results.records import read_records

TINY_CFG = ["img_size=32", "crop_pct=1.0", "num_workers=0", "extract_batch_size=16"]


def tiny_imagefolder(root: Path, classes: int = 3, per_split: tuple[int, int] = (6, 3)) -> Path:
    """A small real ImageFolder (digits 0..classes-1 at 32 px), written directly."""
    from tokes_bench.data.digits import digits_arrays

    images, labels = digits_arrays(32)
    for c in range(classes):
        idx = np.flatnonzero(labels == c)
        for split, (lo, hi) in (("train", (0, per_split[0])), ("val", (per_split[0], sum(per_split)))):
            (root / split / str(c)).mkdir(parents=True, exist_ok=True)
            for i in idx[lo:hi]:
                Image.fromarray(images[i]).save(root / split / str(c) / f"{i}.png")
    return root


# ---------------------------------------------------------------- layer-wise lr decay


def _hand_scale_and_wd(name: str, ndim: int, decay: float, wd: float) -> tuple[float, float]:
    """MAE's rule written out for a depth-2 ViT: embeddings layer 0, block i layer i+1, rest layer 3."""
    if name.startswith("patch_embed") or name in ("cls_token", "pos_embed"):
        layer = 0
    elif name.startswith("blocks.0."):
        layer = 1
    elif name.startswith("blocks.1."):
        layer = 2
    else:
        layer = 3
    no_wd = ndim == 1 or name in ("cls_token", "pos_embed")
    return decay ** (3 - layer), (0.0 if no_wd else wd)


def test_lrd_groups_of_depth2_vit_equal_hand_computed_scales():
    model = build_encoder("vit_tiny_patch16_224", img_size=32, depth=2, num_classes=5)
    model.pos_embed.requires_grad_(True)  # trained in fine-tuning, no weight decay
    groups = param_groups_lrd(model, weight_decay=0.05, no_weight_decay_list=model.no_weight_decay(), layer_decay=0.5)
    where = {id(p): g for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(where) == len(names)
    seen_scales = set()
    for name, p in names.items():
        scale, wd = _hand_scale_and_wd(name, p.ndim, 0.5, 0.05)
        assert where[id(p)]["lr_scale"] == pytest.approx(scale), name
        assert where[id(p)]["weight_decay"] == wd, name
        seen_scales.add(scale)
    assert seen_scales == {0.125, 0.25, 0.5, 1.0}
    # frozen parameters are left out
    model.pos_embed.requires_grad_(False)
    groups = param_groups_lrd(model, 0.05, model.no_weight_decay(), 0.5)
    assert all(p is not model.pos_embed for g in groups for p in g["params"])


def test_layer_decay_constructor_sets_group_lrs_through_a_wrapper_prefix():
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = build_encoder("vit_tiny_patch16_224", img_size=32, depth=2, num_classes=5)

    model = Wrapper()
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type="TokesLayerDecayOptimWrapperConstructor",
            optim_wrapper_cfg=dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=2.0, weight_decay=0.05)),
            paramwise_cfg=dict(layer_decay_rate=0.5),
        )
    )
    opt = constructor(model).optimizer
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale, wd = _hand_scale_and_wd(name[len("encoder.") :], p.ndim, 0.5, 0.05)
        assert lr_of[id(p)] == (pytest.approx(2.0 * scale), wd), name


# ---------------------------------------------------------------- LARS, schedule, top-k


def test_lars_step_matches_the_formula():
    w = torch.tensor([[3.0, 4.0]], requires_grad=True)  # ||w|| = 5
    b = torch.tensor([1.0], requires_grad=True)
    opt = LARS([w, b], lr=0.5, weight_decay=0.1, momentum=0.9, trust_coefficient=0.01)
    w.grad = torch.tensor([[1.0, 0.0]])
    b.grad = torch.tensor([2.0])
    opt.step()
    d = np.array([1.0 + 0.1 * 3.0, 0.1 * 4.0])  # grad + wd * w
    d = d * 0.01 * 5.0 / np.linalg.norm(d)
    np.testing.assert_allclose(w.detach().numpy()[0], np.array([3.0, 4.0]) - 0.5 * d, rtol=1e-6)
    assert b.item() == pytest.approx(1.0 - 0.5 * 2.0)  # 1-D: no decay, no trust ratio


def test_cosine_schedule_hand_values():
    assert cosine_lr(0.0, 1.0, 10, 2) == 0.0
    assert cosine_lr(1.0, 1.0, 10, 2) == pytest.approx(0.5)
    assert cosine_lr(2.0, 1.0, 10, 2) == pytest.approx(1.0)
    assert cosine_lr(6.0, 1.0, 10, 2, min_lr=0.2) == pytest.approx(0.6)  # half way down the cosine
    assert cosine_lr(10.0, 1.0, 10, 2, min_lr=0.2) == pytest.approx(0.2)


def test_topk_accuracy_hand_case():
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4]])
    assert topk_accuracy(scores, torch.tensor([1, 2, 0]), ks=(1,)) == {"top1": pytest.approx(100 / 3)}
    scores7 = torch.eye(7)[[0, 1]] + torch.arange(7) / 100  # sample 0: class 0 first; sample 1: class 1
    out = topk_accuracy(scores7, torch.tensor([6, 2]))  # 6 is 2nd for sample 0; 2 ranks 7th for sample 1
    assert out == {"top1": 0.0, "top5": 50.0}


# ---------------------------------------------------------------- kNN


def _knn_brute_force(train, train_labels, test, num_classes, k, t):
    """DINO's weighted vote, one test point at a time, in plain Python."""
    preds = []
    for q in test.tolist():
        qn = math.sqrt(sum(v * v for v in q))
        sims = []
        for x, y in zip(train.tolist(), train_labels.tolist(), strict=True):
            xn = math.sqrt(sum(v * v for v in x))
            sims.append((sum(a * b for a, b in zip(q, x, strict=True)) / (qn * xn), y))
        votes = [0.0] * num_classes
        for s, y in sorted(sims, key=lambda p: -p[0])[:k]:
            votes[y] += math.exp(s / t)
        preds.append(votes)
    return preds


def test_knn_scores_equal_brute_force():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(30, 6, generator=g)
    labels = torch.randint(0, 4, (30,), generator=g)
    test = torch.randn(9, 6, generator=g)
    for k, t in ((5, 0.07), (20, 0.5), (1, 1.0)):
        got = knn_scores(train, labels, test, 4, k=k, temperature=t, chunk=4)
        want = torch.tensor(_knn_brute_force(train, labels, test, 4, k, t), dtype=got.dtype)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert torch.equal(got.argmax(1), want.argmax(1))


# ---------------------------------------------------------------- commands: records and errors


def _eval(protocol: str, encoder: str, data: Path, tmp: Path, *extra: str) -> int:
    options = [*TINY_CFG, *extra] if protocol != "finetune" else list(extra)
    return main(
        [
            "eval",
            protocol,
            "--encoder",
            encoder,
            "--data",
            str(data),
            "--work-dir",
            str(tmp / "wd"),
            "--results",
            str(tmp / "results.jsonl"),
            "--seed",
            "3",
        ]
        + (["--cfg-options", *options] if options else [])
    )


def test_knn_and_linear_commands_write_valid_records(tmp_path):
    data = tiny_imagefolder(tmp_path / "data", classes=7, per_split=(4, 2))
    assert _eval("knn", "random:vit_tiny_patch16_224", data, tmp_path) == 0
    assert (
        _eval("linear", "random:vit_tiny_patch16_224", data, tmp_path, "epochs=2", "warmup_epochs=1", "batch_size=8")
        == 0
    )
    recs = read_records(tmp_path / "results.jsonl")  # validates every line against the schema
    got = {(r["protocol"], r["metric"]) for r in recs}
    assert got == {("knn", "top1"), ("knn", "top5"), ("linear", "top1"), ("linear", "top5")}
    for r in recs:
        assert (r["task"], r["method"], r["arch"], r["seed"], r["dataset"]) == (
            "classification",
            "random",
            "vit_tiny_patch16_224",
            3,
            "data",
        )
        assert 0.0 <= r["value"] <= 100.0
        assert r["extra"]["num_classes"] == 7 and r["extra"]["num_val"] == 14
    # the linear probe reused the features the kNN run cached (same encoder, transform, files)
    assert len(list((tmp_path / "wd" / "features").glob("*.safetensors"))) == 2


def test_three_class_data_records_top1_only(tmp_path):
    data = tiny_imagefolder(tmp_path / "data", classes=3, per_split=(4, 2))
    assert _eval("knn", "random:vit_tiny_patch16_224", data, tmp_path) == 0
    assert [r["metric"] for r in read_records(tmp_path / "results.jsonl")] == ["top1"]


@pytest.mark.parametrize("protocol", ["knn", "linear", "finetune"])
def test_missing_split_is_a_clear_error(tmp_path, capsys, protocol):
    data = tiny_imagefolder(tmp_path / "data")
    for split in ("val", "train"):
        (data / split).rename(tmp_path / f"{split}_moved")
        assert _eval(protocol, "random:vit_tiny_patch16_224", data, tmp_path) == 2
        err = capsys.readouterr().err
        assert f"{data / split} does not exist" in err
        (tmp_path / f"{split}_moved").rename(data / split)


def test_empty_class_folder_is_a_clear_error(tmp_path, capsys):
    data = tiny_imagefolder(tmp_path / "data")
    (data / "val" / "empty").mkdir()
    (data / "train" / "empty").mkdir()
    assert _eval("knn", "random:vit_tiny_patch16_224", data, tmp_path) == 2
    assert f"class folder {data / 'train' / 'empty'} has no images" in capsys.readouterr().err


def test_class_mismatch_between_splits_is_a_clear_error(tmp_path, capsys):
    data = tiny_imagefolder(tmp_path / "data")
    (data / "val" / "2").rename(data / "val" / "9")
    assert _eval("linear", "random:vit_tiny_patch16_224", data, tmp_path) == 2
    err = capsys.readouterr().err
    assert "same class folders" in err and "only in train: ['2']" in err and "only in val: ['9']" in err


def test_undecodable_image_is_named(tmp_path, capsys):
    data = tiny_imagefolder(tmp_path / "data")
    bad = data / "val" / "1" / "broken.png"
    bad.write_bytes(b"not a png at all")
    assert _eval("knn", "random:vit_tiny_patch16_224", data, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot decode image {bad}" in err
    assert "Traceback" not in err


def test_encoder_arch_mismatch_is_a_clear_error(tmp_path, capsys):
    from tokes_bench.models import save_encoder

    data = tiny_imagefolder(tmp_path / "data")
    assert _eval("knn", "random:vit_small_patch16_224", data, tmp_path, "arch=vit_tiny_patch16_224") == 2
    assert "has arch 'vit_small_patch16_224' but the config expects 'vit_tiny_patch16_224'" in capsys.readouterr().err
    enc = tmp_path / "tiny.safetensors"
    save_encoder(
        enc,
        build_encoder("vit_tiny_patch16_224", img_size=32).state_dict(),
        dict(arch="vit_tiny_patch16_224", method="mae"),
    )
    config = Path(__file__).resolve().parents[1] / "configs" / "classification" / "linear_vit-b-16_in1k.py"
    assert _eval("linear", str(enc), data, tmp_path, "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert f"{enc}: encoder arch is 'vit_tiny_patch16_224' but the config expects 'vit_base_patch16_224'" in err


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    data = tiny_imagefolder(tmp_path / "data")
    assert _eval("knn", "random:vit_tiny_patch16_224", data, tmp_path, "temprature=0.1") == 2
    assert "unknown config key(s) ['temprature']" in capsys.readouterr().err


def test_finetune_unknown_override_is_a_clear_error(tmp_path, capsys):
    data = tiny_imagefolder(tmp_path / "data")
    assert _eval("finetune", "random:vit_tiny_patch16_224", data, tmp_path, "epochz=3") == 2
    assert "unknown config key 'epochz'" in capsys.readouterr().err
    assert _eval("finetune", "random:vit_tiny_patch16_224", data, tmp_path, "optim_wrapper.paramwise_cfg.x.y=1") == 2
    assert "unknown config key 'optim_wrapper.paramwise_cfg.x.y'" in capsys.readouterr().err
    assert _eval("finetune", "random:vit_tiny_patch16_224", data, tmp_path, "model.drop_rate=0.2") == 2
    assert "unknown model option(s) ['drop_rate']" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end (slow)

PROBE_CFG = dict(
    img_size=32,
    crop_pct=1.0,
    num_workers=0,
    extract_batch_size=250,
    blr=32.0,
    batch_size=64,
    epochs=90,
    warmup_epochs=10,
)


@pytest.fixture(scope="module")
def digits32(tmp_path_factory):
    """500 train / 250 val digits at 32 px (a balanced subset of the embedded digits)."""
    return tiny_imagefolder(tmp_path_factory.mktemp("digits32"), classes=10, per_split=(50, 25))


@pytest.fixture(scope="module")
def supervised_encoder(digits32, tmp_path_factory):
    """A TRAINED vit_tiny at 32 px whose last block + final norm were trained SUPERVISED on the digits
    train split (of `digits32`; blocks 0-10 random; their tokens cached once), exported as method 'other'.

    Not a pretraining-demo encoder: on this CPU, pretraining one within the test budget gives an
    encoder barely different from random init; this one is certainly trained, cheaply.
    """
    from torch.utils.data import DataLoader

    from tokes_bench.adapters.classification.data import eval_transform, open_splits
    from tokes_bench.models import save_encoder

    torch.manual_seed(0)
    tf = eval_transform(32, 1.0, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    train, _ = open_splits(digits32, tf, tf)
    model = build_encoder("vit_tiny_patch16_224", img_size=32, num_classes=10)
    tokens, labels = [], []
    with torch.no_grad():
        for x, y in DataLoader(train, batch_size=256):
            h = model.norm_pre(model._pos_embed(model.patch_embed(x)))
            for block in model.blocks[:-1]:
                h = block(h)
            tokens.append(h)
            labels.append(y)
    tokens, labels = torch.cat(tokens), torch.cat(labels)
    params = [*model.blocks[-1].parameters(), *model.norm.parameters(), *model.head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    with one_cpu_thread(torch.device("cpu")):
        _train_last_block(model, tokens, labels, opt, gen)
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    path = tmp_path_factory.mktemp("enc") / "supervised_last_block.safetensors"
    meta = dict(arch="vit_tiny_patch16_224", method="other", img_size=32, training="supervised-last-block-test")
    return save_encoder(path, weights, meta)


def _train_last_block(model, tokens, labels, opt, gen, epochs: int = 10) -> None:
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=gen)
        for i in range(0, len(order) - 31, 32):
            idx = order[i : i + 32]
            logits = model.head(model.norm(model.blocks[-1](tokens[idx]))[:, 0])
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.slow
def test_linear_probe_trained_beats_random_beats_chance(digits32, supervised_encoder):
    from tokes_bench.adapters.classification.config import LinearSettings
    from tokes_bench.adapters.classification.linear_probe import run_linear_probe

    settings = LinearSettings(**PROBE_CFG)
    random_top1 = run_linear_probe("random:vit_tiny_patch16_224", digits32, settings, None, seed=0).metrics["top1"]
    trained_top1 = run_linear_probe(str(supervised_encoder), digits32, settings, None, seed=0).metrics["top1"]
    chance = 100.0 / 10
    assert random_top1 > 3 * chance, random_top1
    print(f"linear probe top1 on digits32: random {random_top1:.2f}, trained {trained_top1:.2f}")
    assert trained_top1 > random_top1 + 2.0, (trained_top1, random_top1)


@pytest.mark.slow
def test_finetune_runs_through_the_runner_writes_records_and_resumes(tmp_path):
    data = tiny_imagefolder(tmp_path / "data", classes=7, per_split=(4, 2))
    options = [
        "img_size=32", "epochs=2", "warmup_epochs=1", "batch_size=8", "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0", "default_hooks.logger.interval=1",
        "default_hooks.checkpoint.max_keep_ckpts=-1",
    ]  # fmt: skip
    config = Path(__file__).resolve().parents[1] / "configs" / "classification" / "finetune_vit-t-16_digits_demo.py"
    args = ["eval", "finetune", "--encoder", "random:vit_tiny_patch16_224", "--data", str(data), "--config",
            str(config), "--work-dir", str(tmp_path / "wd"), "--results", str(tmp_path / "r.jsonl")]  # fmt: skip
    assert main([*args, "--cfg-options", *options]) == 0
    recs = read_records(tmp_path / "r.jsonl")
    assert [(r["protocol"], r["metric"], r["dataset"]) for r in recs] == [
        ("finetune", "top1", "digits-demo"), ("finetune", "top5", "digits-demo")]  # fmt: skip
    assert recs[0]["extra"]["num_train"] == 28 and recs[0]["extra"]["layer_decay"] == 0.75
    # resume: point mmengine's marker back at epoch 1 and run again; it must continue, not restart
    wd = tmp_path / "wd"
    assert (wd / "epoch_2.pth").is_file()
    (wd / "last_checkpoint").write_text(str(wd / "epoch_1.pth"))
    assert main([*args, "--resume", "--cfg-options", *options]) == 0
    logs = sorted(wd.glob("*/*.log"))
    assert len(logs) == 2
    text = logs[-1].read_text()
    assert "resumed epoch: 1, iter: 3" in text
    assert "Epoch(train) [1]" not in text and "Epoch(train) [2]" in text
    assert len(read_records(tmp_path / "r.jsonl")) == 4


@pytest.mark.parametrize("epochs,warmup", [(6, 2), (3, 0), (1, 1), (2, 5)])
def test_finetune_schedule_equals_mae_formula(epochs, warmup):
    """The mmengine scheduler made from the config keys follows MAE's per-iteration lr formula."""
    from mmengine.registry import PARAM_SCHEDULERS

    from tokes_bench.adapters.classification.finetune import mae_schedule

    lr, min_lr, per_epoch = 0.4, 0.004, 5
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    schedulers = []
    for cfg in mae_schedule(epochs, warmup, min_lr / lr):
        cfg = dict(cfg)
        cls = PARAM_SCHEDULERS.get(cfg.pop("type"))
        cfg.pop("convert_to_iter_based")
        schedulers.append(cls.build_iter_from_epoch(opt, epoch_length=per_epoch, **cfg))
    seen = []
    for it in range(epochs * per_epoch):
        seen.append(opt.param_groups[0]["lr"])
        assert seen[-1] == pytest.approx(cosine_lr(it / per_epoch, lr, epochs, warmup, min_lr), rel=1e-9), it
        opt.step()
        for s in schedulers:
            s.step()
    if (epochs, warmup) == (6, 2):  # hand values: warmup lr x epoch / 2; cosine half way at epoch 4
        assert seen[1] == pytest.approx(0.04) and seen[10] == pytest.approx(0.4)
        assert seen[20] == pytest.approx(0.004 + 0.396 * 0.5)
    if (epochs, warmup) == (2, 5):  # still warming up at the end: lr x 1.8 / 5
        assert seen[-1] == pytest.approx(0.4 * 1.8 / 5)


def test_finetune_model_keeps_encoder_weights_through_runner_init(tmp_path):
    """The Runner calls model.init_weights() before training; the encoder must stay the file's weights."""
    from mmengine.registry import MODELS

    import tokes_bench.adapters.classification.finetune  # noqa: F401  (registers the model)
    from tokes_bench.models import save_encoder

    torch.manual_seed(1)
    source = build_encoder("vit_tiny_patch16_224", img_size=32)
    path = save_encoder(
        tmp_path / "e.safetensors", source.state_dict(), dict(arch="vit_tiny_patch16_224", method="mae")
    )
    torch.manual_seed(2)
    model = MODELS.build(dict(type="TokesViTClassifier", encoder=str(path), num_classes=4, img_size=32))
    model.init_weights()
    got = model.encoder.state_dict()
    for name, value in source.state_dict().items():
        key = "fc_norm." + name[5:] if name.startswith("norm.") else name  # global average pooling
        torch.testing.assert_close(got[key], value, msg=name)
    assert model.encoder.head.weight.abs().max() < 2e-4  # MAE's head init: trunc_normal(std=2e-5)
