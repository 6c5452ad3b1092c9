"""Throughput and peak memory of VOS scoring and label propagation, each beside a straightforward baseline.

Generates videos (two moving, deforming objects; predictions = perturbed ground truth) at 480p
(854x480) and 1080p (1920x1080), 100 and 1,000 frames, then runs every case in a fresh subprocess
and reports frames/s, wall time and peak RSS (total, and above the process's RSS after imports):

  scoring:  decode-only (read every GT + prediction PNG, thread pool: the floor), ours (streaming,
            thread pool), naive (same definitions, one frame at a time, one thread)
  propagation (short side 480, random ViT-Ti/16 on CPU unless CUDA): ours (batched features,
            vectorised neighbourhood) vs naive (DINO script structure: one frame per forward pass,
            Python-loop neighbourhood mask, per-channel normalisation loop)

  python benchmarks/vos_eval.py --quick          # 480p+1080p x 100 frames scoring, 480p x 30 propagation

Heap peak = sampled peak of anonymous RSS (the working set; shared-library pages excluded);
max RSS = ru_maxrss, which includes torch's libraries (`import tokes_bench` imports torch).
  python benchmarks/vos_eval.py                  # full grid (several GB of PNGs; long on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"480p": (480, 854), "1080p": (1080, 1920)}


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class AnonPeak:
    """Samples the process's anonymous RSS (heap, not shared libraries) every 5 ms; keeps the peak.

    ru_maxrss alone mixes in file-backed library pages, which the kernel evicts and re-faults under
    memory pressure, so the heap working set is tracked separately.
    """

    def __init__(self) -> None:
        import threading

        self.peak = _rss_mb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss_mb("RssAnon"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- data


def make_video(root: Path, size: str, n_frames: int, seed: int = 0) -> Path:
    """VOST-layout video 'v' with GT, perturbed predictions (root/pred) and JPEG frames."""
    from PIL import Image

    from tokes_bench.adapters.vost.palette import voc_palette, write_indexed_png

    h, w = SIZES[size]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pal = voc_palette()
    for d in ("Annotations/v", "pred/v", "JPEGImages/v"):
        (root / d).mkdir(parents=True, exist_ok=True)
    bg = rng.integers(0, 255, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    bg = np.asarray(Image.fromarray(bg).resize((w, h), Image.BILINEAR))
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        lab = np.zeros((h, w), np.uint8)
        r1 = 0.2 * h * (1 + 0.3 * np.sin(2 * np.pi * t))
        lab[np.hypot(yy - h * 0.5, xx - w * (0.2 + 0.5 * t)) <= r1] = 1
        lab[(np.abs(yy - h * (0.3 + 0.4 * t)) < 0.1 * h) & (np.abs(xx - w * 0.7) < 0.15 * w)] = 2
        pred = np.roll(lab, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
        write_indexed_png(root / "Annotations" / "v" / f"{i:05d}.png", lab, pal)
        write_indexed_png(root / "pred" / "v" / f"{i:05d}.png", pred, pal)
        img = bg.copy()
        img[lab == 1] = (200, 40, 40)
        img[lab == 2] = (40, 40, 200)
        Image.fromarray(img).save(root / "JPEGImages" / "v" / f"{i:05d}.jpg", quality=90)
    (root / "ImageSets").mkdir(exist_ok=True)
    (root / "ImageSets" / "val.txt").write_text("v\n")
    return root


# ---- cases (each runs in its own process)


def case_decode(root: Path) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from tokes_bench.adapters.vost.layout import read_mask

    paths = sorted((root / "Annotations" / "v").glob("*.png"))[1:-1]
    paths += [root / "pred" / "v" / p.name for p in paths]
    base, sampler = _rss_mb("RssAnon"), AnonPeak()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        total = sum(int(m.size) for m in pool.map(read_mask, paths))
    return {
        "seconds": time.perf_counter() - t0,
        "frames": len(paths) // 2,
        "base_mb": base,
        "anon_peak_mb": sampler.stop(),
        "check": total,
    }


def case_score_ours(root: Path) -> dict:
    from tokes_bench.adapters.vost.layout import make_layout
    from tokes_bench.adapters.vost.scoring import evaluate, summarize

    layout = make_layout(root, "vost")
    base, sampler = _rss_mb("RssAnon"), AnonPeak()
    t0 = time.perf_counter()
    ev = evaluate(layout, "val", root / "pred")
    sec = time.perf_counter() - t0
    return {
        "seconds": sec,
        "frames": ev.frames,
        "base_mb": base,
        "anon_peak_mb": sampler.stop(),
        "check": summarize(ev)[0]["J-Mean"],
    }


def case_score_naive(root: Path) -> dict:
    from PIL import Image

    from tokes_bench.adapters.vost.metrics import db_statistics

    gts = sorted((root / "Annotations" / "v").glob("*.png"))
    base, sampler = _rss_mb("RssAnon"), AnonPeak()
    t0 = time.perf_counter()
    first = np.array(Image.open(gts[0]))
    n = int(first[first != 255].max())
    per_obj: list[list[float]] = [[] for _ in range(n)]
    for g in gts[1:-1]:
        gt = np.array(Image.open(g))
        gt[gt == 255] = 0
        pred = np.array(Image.open(root / "pred" / "v" / g.name))
        for k in range(1, n + 1):
            a, b = gt == k, pred == k
            union = np.logical_or(a, b).sum()
            per_obj[k - 1].append(1.0 if union == 0 else np.logical_and(a, b).sum() / union)
    j_mean = float(np.mean([db_statistics(np.array(v))[0] for v in per_obj]))
    return {
        "seconds": time.perf_counter() - t0,
        "frames": len(gts) - 2,
        "base_mb": base,
        "anon_peak_mb": sampler.stop(),
        "check": j_mean,
    }


def _encoder():
    import torch

    from tokes_bench.adapters.vost.propagation import ViTFeatures
    from tokes_bench.models import load_encoder

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, _ = load_encoder("random:vit_tiny_patch16_224", dynamic_img_size=True)
    return ViTFeatures(model.to(device)), device


def case_prop_ours(root: Path) -> dict:
    import torch

    from tokes_bench.adapters.vost.layout import make_layout
    from tokes_bench.adapters.vost.pipeline import propagate_split
    from tokes_bench.adapters.vost.propagation import PropagationConfig

    torch.set_grad_enabled(False)
    extractor, device = _encoder()
    base, sampler = _rss_mb("RssAnon"), AnonPeak()
    t0 = time.perf_counter()
    n = propagate_split(
        make_layout(root, "vost"),
        "val",
        extractor,
        PropagationConfig(),
        root / "prop_ours",
        device=device,
        progress=None,
    )
    return {"seconds": time.perf_counter() - t0, "frames": n, "base_mb": base, "anon_peak_mb": sampler.stop()}


def case_prop_naive(root: Path) -> dict:
    """DINO's script structure: per-frame forward, Python-loop neighbourhood, per-channel loop."""
    import cv2
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from tokes_bench.adapters.vost.palette import voc_palette, write_indexed_png
    from tokes_bench.adapters.vost.propagation import MEAN, STD, target_size

    torch.set_grad_enabled(False)
    extractor, device = _encoder()
    p = extractor.patch_size
    frames = sorted((root / "JPEGImages" / "v").glob("*.jpg"))
    out = root / "prop_naive"
    base, sampler = _rss_mb("RssAnon"), AnonPeak()
    t0 = time.perf_counter()
    seg_ori = np.array(Image.open(root / "Annotations" / "v" / "00000.png"))
    th, tw = target_size(*seg_ori.shape, 480, 64)
    h, w = th // p, tw // p

    def read(path):
        img = cv2.resize(cv2.imread(str(path)), (tw, th)).astype(np.float32) / 255.0
        x = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)
        for c, m, s in zip(x, MEAN, STD, strict=True):
            c.sub_(m).div_(s)
        return extractor(x[None].to(device))[0].reshape(h * w, -1)

    small = np.array(Image.fromarray(seg_ori).resize((w, h), 0))
    first_seg = F.one_hot(torch.from_numpy(small).long()).permute(2, 0, 1)[None].float().to(device)
    mask = torch.zeros(h, w, h, w)
    r = 12
    for i in range(h):
        for j in range(w):
            for a in range(2 * r + 1):
                for b in range(2 * r + 1):
                    if 0 <= i - r + a < h and 0 <= j - r + b < w:
                        mask[i, j, i - r + a, j - r + b] = 1
    mask = mask.reshape(h * w, h * w).to(device)
    f1 = read(frames[0]).T
    que: list = []
    write_indexed_png(out / "v" / "00000.png", seg_ori, voc_palette())
    for cnt in range(1, len(frames)):
        feat_tar = read(frames[cnt])
        feats = [f1] + [q[0] for q in que]
        segs = [first_seg] + [q[1] for q in que]
        src = F.normalize(torch.stack(feats), dim=1)
        tar = F.normalize(feat_tar, dim=1).unsqueeze(0).repeat(len(feats), 1, 1)
        aff = torch.exp(torch.bmm(tar, src) / 0.1) * mask
        aff = aff.transpose(2, 1).reshape(-1, h * w)
        kth = torch.topk(aff, dim=0, k=5).values.min(dim=0).values
        aff[aff < kth] = 0
        aff = aff / aff.sum(0, keepdim=True)
        s = torch.cat(segs)
        n, c = s.shape[:2]
        seg = (s.reshape(n, c, -1).transpose(2, 1).reshape(-1, c).T @ aff).reshape(1, c, h, w)
        if len(que) == 7:
            que.pop(0)
        que.append([feat_tar.T, seg])
        up = F.interpolate(seg, scale_factor=p, mode="bilinear", align_corners=False)[0]
        for k in range(c):
            if up[k].max() > 0:
                up[k] = (up[k] - up[k].min()) / (up[k] - up[k].min()).max()
        ids = np.array(up.argmax(0).cpu(), dtype=np.uint8)
        ids = np.array(Image.fromarray(ids).resize(seg_ori.shape[::-1], 0))
        write_indexed_png(out / "v" / f"{cnt:05d}.png", ids, voc_palette())
    return {"seconds": time.perf_counter() - t0, "frames": len(frames), "base_mb": base, "anon_peak_mb": sampler.stop()}


CASES = {
    "decode": case_decode,
    "score-ours": case_score_ours,
    "score-naive": case_score_naive,
    "prop-ours": case_prop_ours,
    "prop-naive": case_prop_naive,
}


def run_case(name: str, root: Path) -> dict:
    """Run one case in a fresh interpreter; returns its JSON report plus peak RSS."""
    proc = subprocess.run(
        [sys.executable, __file__, "--case", name, "--root", str(root)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100-frame scoring, 30-frame 480p propagation")
    ap.add_argument("--sizes", default="480p,1080p")
    ap.add_argument("--frames", default="100,1000", help="scoring video lengths")
    ap.add_argument("--prop-frames", default="100,1000", help="propagation video lengths")
    ap.add_argument("--prop-sizes", default="480p,1080p")
    ap.add_argument("--no-prop", action="store_true", help="scoring only")
    ap.add_argument("--no-naive-prop", action="store_true", help="skip the slow naive propagation baseline")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case (fastest kept)")
    ap.add_argument("--workdir", help="keep generated videos here (default: a temp dir, removed)")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        rep = CASES[args.case](Path(args.root))
        rep["peak_mb"] = _peak_mb()
        print(json.dumps(rep))
        return 0
    if args.quick:
        args.frames, args.prop_frames, args.prop_sizes = "100", "30", "480p"
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        plan = {}
        for size in args.sizes.split(","):
            for n in map(int, args.frames.split(",")):
                plan.setdefault((size, n), []).extend(["decode", "score-ours", "score-naive"])
        for size in [] if args.no_prop else args.prop_sizes.split(","):
            for n in map(int, args.prop_frames.split(",")):
                plan.setdefault((size, n), []).extend(["prop-ours"] + ([] if args.no_naive_prop else ["prop-naive"]))
        for (size, n), cases in plan.items():
            t0 = time.perf_counter()
            root = make_video(Path(tmp) / f"{size}_{n}", size, n)
            print(f"# generated {size} x {n} frames in {time.perf_counter() - t0:.0f} s", flush=True)
            reps: dict[str, dict] = {}
            for _ in range(args.repeats):  # interleaved repeats; keep the fastest (least disturbed) run
                for c in cases:
                    r = run_case(c, root)
                    if c not in reps or r["seconds"] < reps[c]["seconds"]:
                        reps[c] = r
            for c, r in reps.items():
                extra = ""
                if c == "score-ours":
                    extra = f"  ours/decode {r['seconds'] / reps['decode']['seconds']:.2f}x"
                    extra += f", naive/ours {reps['score-naive']['seconds'] / r['seconds']:.2f}x"
                    assert abs(r["check"] - reps["score-naive"]["check"]) < 1e-9, "ours and naive disagree"
                if c == "prop-ours" and "prop-naive" in reps:
                    extra = f"  naive/ours {reps['prop-naive']['seconds'] / r['seconds']:.2f}x"
                print(
                    f"{size:6s} {n:5d} frames  {c:12s} {r['frames'] / r['seconds']:8.1f} frames/s  "
                    f"{r['seconds']:7.2f} s  heap peak {r['anon_peak_mb']:6.0f} MB "
                    f"(+{r['anon_peak_mb'] - r['base_mb']:.0f} MB over post-import), "
                    f"max RSS {r['peak_mb']:5.0f} MB{extra}",
                    flush=True,
                )
            if (size, n) != list(plan)[-1]:
                import shutil

                shutil.rmtree(root)
    print(f"# {os.cpu_count()} CPU(s); frames/s counts scored frames (scoring) or propagated frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
