"""`tokes-bench vost-score`: CSVs equal to a faithful re-implementation of the official tools, hand values
from the written CSVs, and bad input named by file."""

from __future__ import annotations

import io
import shutil
from math import floor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation

from tokes_bench.adapters.vost.palette import voc_palette, write_indexed_png
from tokes_bench.cli import main
from tokes_bench.data.vost_demo import write_vost_demo

# ---- independent reference: the official per-frame computation, transcribed from TRI-ML/VOST
# `evaluation/source/*.py` and davisvideochallenge/davis2017-evaluation `davis2017/*.py`
# (whole videos as float64 one-hot, uint8 decay bins, skimage-style disk with scipy dilation).


def _ref_db_statistics(v):
    m = np.nanmean(v)
    o = np.nanmean(v > 0.5)
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.uint8)
    bins = [v[ids[i] : ids[i + 1] + 1] for i in range(4)]
    return m, o, np.nanmean(bins[0]) - np.nanmean(bins[3])


def _ref_iou(annotation, segmentation):
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = inters / union
    j[np.isclose(union, 0)] = 1
    return j


def _ref_seg2bmap(seg):
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _ref_f_measure(foreground_mask, gt_mask, bound_th=0.008):
    bound_pix = np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    r = int(bound_pix)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = xx**2 + yy**2 <= r**2
    fg_boundary = _ref_seg2bmap(foreground_mask)
    gt_boundary = _ref_seg2bmap(gt_mask)
    fg_dil = binary_dilation(fg_boundary, disk)
    gt_dil = binary_dilation(gt_boundary, disk)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg, n_gt = np.sum(fg_boundary), np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision, recall = np.sum(fg_match) / float(n_fg), np.sum(gt_match) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _ref_read_all(paths):
    first = np.array(Image.open(paths[0]))
    out = np.zeros((len(paths), *first.shape))
    for i, p in enumerate(paths):
        out[i] = np.array(Image.open(p))
    return out


def _ref_one_hot(masks, n):
    tmp = np.ones((n, *masks.shape)) * np.arange(1, n + 1)[:, None, None, None]
    return tmp == masks[None]


def official_csvs(ann_root: Path, sets_file: Path, results: Path, protocol: str) -> tuple[str, str]:
    """Both CSVs as the official VOST (protocol 'vost') or DAVIS-2017 ('davis') scripts write them."""
    metrics = {k: {"M": [], "R": [], "D": [], "per": {}} for k in ("J", "J_last", "F")}
    for seq in [x.strip() for x in sets_file.read_text().splitlines()]:
        paths = sorted((ann_root / seq).glob("*.png"))
        masks = _ref_read_all(paths)
        masks[masks == 255] = 0
        ids = [p.stem for p in paths]
        gt = _ref_one_hot(masks, int(np.max(masks[0])))[:, 1:-1]
        ids = ids[1:-1]
        res = _ref_read_all([results / seq / f"{i}.png" for i in ids])
        res = _ref_one_hot(res, int(np.max(res))) > 0
        if res.shape[0] > gt.shape[0]:
            assert protocol == "vost", "the official DAVIS tool exits here"
            res = res[: gt.shape[0]]
        elif res.shape[0] < gt.shape[0]:
            res = np.concatenate([res, np.zeros((gt.shape[0] - res.shape[0], *res.shape[1:]))], axis=0)
        last_q = int(floor(len(ids) * 0.75))
        for ii in range(gt.shape[0]):
            j = _ref_iou(gt[ii], res[ii])
            f = np.array([_ref_f_measure(res[ii][t], gt[ii][t]) for t in range(gt.shape[1])])
            for key, vals in (("J", j), ("J_last", j[last_q:]), ("F", f)):
                m, r, d = _ref_db_statistics(vals)
                metrics[key]["M"].append(m)
                metrics[key]["R"].append(r)
                metrics[key]["D"].append(d)
                metrics[key]["per"][f"{seq}_{ii + 1}"] = m
    J, JL, F = metrics["J"], metrics["J_last"], metrics["F"]
    names = list(J["per"])
    if protocol == "vost":
        g_cols = ["J-Mean", "J-Recall", "J-Decay", "J_last-Mean", "J_last-Recall", "J_last-Decay"]
        g = [np.mean(J["M"]), np.mean(J["R"]), np.mean(J["D"]), np.mean(JL["M"]), np.mean(JL["R"]), np.mean(JL["D"])]
        rows = [(n, J["per"][n], JL["per"][n]) for n in names]
        s_cols = ["Sequence", "J-Mean", "J_last-Mean"]
    else:
        g_cols = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
        jf = (np.mean(J["M"]) + np.mean(F["M"])) / 2.0
        g = [jf, np.mean(J["M"]), np.mean(J["R"]), np.mean(J["D"]), np.mean(F["M"]), np.mean(F["R"]), np.mean(F["D"])]
        rows = [(n, J["per"][n], F["per"][n]) for n in names]
        s_cols = ["Sequence", "J-Mean", "F-Mean"]
    out = []
    for frame in (pd.DataFrame([g], columns=g_cols), pd.DataFrame(rows, columns=s_cols)):
        buf = io.StringIO()
        frame.to_csv(buf, index=False, float_format="%.3f")
        out.append(buf.getvalue())
    return out[0], out[1]


# ---- fixtures


def _perturb(ids: np.ndarray, rng: np.random.Generator, n_objects: int, extra_id: bool) -> np.ndarray:
    """A plausible but imperfect prediction: shifted, partly erased, objects sometimes swapped."""
    out = np.where(ids == 255, 0, ids).astype(np.uint8)
    out = np.roll(out, rng.integers(-4, 5, size=2), axis=(0, 1))
    h, w = out.shape
    y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
    out[y : y + 8, x : x + 12] = 0
    if n_objects >= 2 and rng.random() < 0.3:
        out = np.where(out == 1, 2, np.where(out == 2, 1, out)).astype(np.uint8)
    if extra_id and rng.random() < 0.3:
        out[:3, :3] = n_objects + 1
    return out


@pytest.fixture(scope="module")
def vost_case(tmp_path_factory):
    root = write_vost_demo(
        tmp_path_factory.mktemp("vost"), n_sequences=3, n_frames=23, size=(96, 128), seed=3, annotate_every=2
    )
    preds = root.parent / (root.name + "_pred")
    rng = np.random.default_rng(0)
    pal = voc_palette()
    for seq_dir in sorted((root / "Annotations").iterdir()):
        for p in sorted(seq_dir.glob("*.png")):
            ids = np.array(Image.open(p))
            write_indexed_png(preds / seq_dir.name / p.name, _perturb(ids, rng, 2, extra_id=True), pal)
    return root, preds


def _as_davis(root: Path, dst: Path) -> Path:
    for src, d in (("JPEGImages", "JPEGImages/480p"), ("Annotations", "Annotations/480p")):
        shutil.copytree(root / src, dst / d)
    (dst / "ImageSets" / "2017").mkdir(parents=True)
    shutil.copy(root / "ImageSets" / "val.txt", dst / "ImageSets" / "2017" / "val.txt")
    return dst


def _read(path: Path) -> str:
    return path.read_text()


# ---- tests


def test_vost_csvs_equal_official(vost_case, tmp_path):
    root, preds = vost_case
    out = tmp_path / "out"
    assert main(["vost-score", "--results", str(preds), "--dataset", str(root), "--out", str(out)]) == 0
    g_ref, s_ref = official_csvs(root / "Annotations", root / "ImageSets" / "val.txt", preds, "vost")
    assert _read(out / "global_results-val.csv") == g_ref
    assert _read(out / "per-sequence_results-val.csv") == s_ref


def test_davis_csvs_equal_official(vost_case, tmp_path):
    root, _ = vost_case
    davis = _as_davis(root, tmp_path / "davis")
    preds = tmp_path / "pred"
    rng = np.random.default_rng(1)
    for seq_dir in sorted((davis / "Annotations" / "480p").iterdir()):
        paths = sorted(seq_dir.glob("*.png"))
        n = int(np.array(Image.open(paths[0])).max(initial=0, where=np.array(Image.open(paths[0])) != 255))
        for p in paths:
            write_indexed_png(
                preds / seq_dir.name / p.name, _perturb(np.array(Image.open(p)), rng, n, False), voc_palette()
            )
    args = ["vost-score", "--results", str(preds), "--dataset", str(davis), "--protocol", "davis"]
    assert main(args) == 0
    g_ref, s_ref = official_csvs(
        davis / "Annotations" / "480p", davis / "ImageSets" / "2017" / "val.txt", preds, "davis"
    )
    assert _read(preds / "global_results-val.csv") == g_ref
    assert _read(preds / "per-sequence_results-val.csv") == s_ref


HAND_K = [10, 9, 6, 4, 2, 1, 0, 5]  # predicted pixels of a 10-pixel object -> J = k / 10


def _hand_dataset(root: Path) -> tuple[Path, Path]:
    """One sequence, 10 annotated frames (8 scored); object 1 = 10 px of row 0, object 2 only in frame 0."""
    pal = voc_palette()
    preds = root / "pred"
    for i in range(10):
        gt = np.zeros((6, 12), np.uint8)
        gt[0, :10] = 1
        if i == 0:
            gt[5, :3] = 2
        write_indexed_png(root / "data" / "Annotations" / "seq" / f"{i:05d}.png", gt, pal)
        pred = np.zeros_like(gt)
        if 1 <= i <= 8:
            pred[0, : HAND_K[i - 1]] = 1
        write_indexed_png(preds / "seq" / f"{i:05d}.png", pred, pal)
    (root / "data" / "ImageSets").mkdir(parents=True)
    (root / "data" / "ImageSets" / "val.txt").write_text("seq\n")
    return root / "data", preds


def test_cli_csv_holds_hand_values(tmp_path):
    data, preds = _hand_dataset(tmp_path)
    (preds / "global_results-val.csv").write_text("J-Mean\n0.999\n")  # stale file: must be recomputed
    assert main(["vost-score", "--results", str(preds), "--dataset", str(data)]) == 0
    g = pd.read_csv(preds / "global_results-val.csv")
    s = pd.read_csv(preds / "per-sequence_results-val.csv")
    # object 1: hand sequence (mean 3.7/8, recall 3/8, decay 2.5/3 - 0.6/3; last quarter [0, .5]);
    # object 2: empty in every scored frame, predicted empty -> J = 1 throughout
    o1 = {
        "J-Mean": 3.7 / 8,
        "J-Recall": 3 / 8,
        "J-Decay": 1.9 / 3,
        "J_last-Mean": 0.25,
        "J_last-Recall": 0.0,
        "J_last-Decay": -0.5,
    }
    o2 = {"J-Mean": 1.0, "J-Recall": 1.0, "J-Decay": 0.0, "J_last-Mean": 1.0, "J_last-Recall": 1.0, "J_last-Decay": 0.0}
    for col in o1:
        assert g[col].iloc[0] == pytest.approx(round((o1[col] + o2[col]) / 2, 3), abs=1e-9)
    assert s["Sequence"].tolist() == ["seq_1", "seq_2"]
    assert s["J-Mean"].tolist() == pytest.approx([round(3.7 / 8, 3), 1.0])
    assert s["J_last-Mean"].tolist() == pytest.approx([0.25, 1.0])


def test_ignore_void_changes_only_void_pixels(tmp_path):
    pal = voc_palette()
    data, preds = tmp_path / "d", tmp_path / "p"
    for i in range(3):
        gt = np.zeros((4, 4), np.uint8)
        gt[0, :2] = 1
        gt[0, 2] = 255
        write_indexed_png(data / "Annotations" / "s" / f"{i}.png", gt, pal)
        pred = np.zeros_like(gt)
        pred[0, :3] = 1
        write_indexed_png(preds / "s" / f"{i}.png", pred, pal)
    (data / "ImageSets").mkdir()
    (data / "ImageSets" / "val.txt").write_text("s\n")
    main(["vost-score", "--results", str(preds), "--dataset", str(data)])
    assert pd.read_csv(preds / "global_results-val.csv")["J-Mean"].iloc[0] == pytest.approx(0.667)
    main(["vost-score", "--results", str(preds), "--dataset", str(data), "--ignore-void"])
    assert pd.read_csv(preds / "global_results-val.csv")["J-Mean"].iloc[0] == 1.0


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_inputs_name_their_file(tmp_path, capsys):
    data, preds = _hand_dataset(tmp_path)
    argv = ["vost-score", "--results", str(preds), "--dataset", str(data)]
    # RGB prediction
    bad = preds / "seq" / "00003.png"
    keep = bad.read_bytes()
    Image.new("RGB", (12, 6)).save(bad)
    assert f"{bad}: mask is a RGB image" in _error(capsys, argv)
    # size mismatch between annotation and prediction
    write_indexed_png(bad, np.zeros((7, 12), np.uint8), voc_palette())
    err = _error(capsys, argv)
    assert str(bad) in err and str(data / "Annotations" / "seq" / "00003.png") in err
    bad.write_bytes(keep)
    # missing prediction
    (preds / "seq" / "00005.png").unlink()
    assert f"prediction {preds / 'seq' / '00005.png'} does not exist" in _error(capsys, argv)
    write_indexed_png(preds / "seq" / "00005.png", np.zeros((6, 12), np.uint8), voc_palette())
    # annotation with an id that is not in the first frame (objects 1..2)
    ann = data / "Annotations" / "seq" / "00004.png"
    write_indexed_png(ann, np.full((6, 12), 3, np.uint8), voc_palette())
    err = _error(capsys, argv)
    assert f"{ann}: annotation holds object id(s) [3] absent from the first-frame annotation" in err
    # missing split file
    err = _error(capsys, [*argv, "--set", "train"])
    assert str(data / "ImageSets" / "train.txt") in err


def test_davis_rejects_extra_predicted_ids(tmp_path, capsys):
    data, preds = _hand_dataset(tmp_path)
    davis = tmp_path / "davis"
    shutil.copytree(data / "Annotations", davis / "Annotations" / "480p")
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    shutil.copy(data / "ImageSets" / "val.txt", davis / "ImageSets" / "2017" / "val.txt")
    bad = preds / "seq" / "00002.png"
    write_indexed_png(bad, np.full((6, 12), 4, np.uint8), voc_palette())
    err = _error(capsys, ["vost-score", "--results", str(preds), "--dataset", str(davis), "--protocol", "davis"])
    assert f"{bad}: predicted id(s) [4] exceed the 2 object(s)" in err
    # the VOST protocol truncates such ids, as its official tool does, and still scores
    assert main(["vost-score", "--results", str(preds), "--dataset", str(data)]) == 0
