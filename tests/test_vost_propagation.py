"""DINO label propagation: vectorised pieces equal a transcription of DINO's loops; an identity-like
extractor copies the first mask on a static video; bad inputs name their files; end to end with records."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tokes_bench.adapters.vost.layout import make_layout
from tokes_bench.adapters.vost.palette import voc_palette, write_indexed_png
from tokes_bench.adapters.vost.pipeline import propagate_split
from tokes_bench.adapters.vost.propagation import (
    PropagationConfig,
    labels_to_mask,
    neighborhood_mask,
    propagate_step,
    target_size,
)
from tokes_bench.cli import main

# ---- transcriptions of facebookresearch/dino eval_video_segmentation.py (loops kept as written)


def _dino_restrict_neighborhood(h, w, size):
    mask = torch.zeros(h, w, h, w)
    for i in range(h):
        for j in range(w):
            for p in range(2 * size + 1):
                for q in range(2 * size + 1):
                    if i - size + p < 0 or i - size + p >= h:
                        continue
                    if j - size + q < 0 or j - size + q >= w:
                        continue
                    mask[i, j, i - size + p, j - size + q] = 1
    return mask.reshape(h * w, h * w)


def _dino_label_propagation(feat_tar, list_frame_feats, list_segs, h, w, size, topk):
    """feat_tar: (hw, dim); list_frame_feats: [(dim, hw)]; list_segs: [(1, C, h, w)]."""
    ncontext = len(list_frame_feats)
    feat_sources = torch.stack(list_frame_feats)
    feat_tar = F.normalize(feat_tar, dim=1, p=2)
    feat_sources = F.normalize(feat_sources, dim=1, p=2)
    feat_tar = feat_tar.unsqueeze(0).repeat(ncontext, 1, 1)
    aff = torch.exp(torch.bmm(feat_tar, feat_sources) / 0.1)
    if size > 0:
        aff *= _dino_restrict_neighborhood(h, w, size).unsqueeze(0).repeat(ncontext, 1, 1)
    aff = aff.transpose(2, 1).reshape(-1, h * w)
    tk_val, _ = torch.topk(aff, dim=0, k=topk)
    tk_val_min, _ = torch.min(tk_val, dim=0)
    aff[aff < tk_val_min] = 0
    aff = aff / torch.sum(aff, keepdim=True, axis=0)
    segs = torch.cat(list_segs)
    nmb_context, C, h, w = segs.shape
    segs = segs.reshape(nmb_context, C, -1).transpose(2, 1).reshape(-1, C).T
    return torch.mm(segs, aff).reshape(1, C, h, w)


def _dino_norm_mask(mask):
    c, h, w = mask.size()
    for cnt in range(c):
        mask_cnt = mask[cnt, :, :]
        if mask_cnt.max() > 0:
            mask_cnt = mask_cnt - mask_cnt.min()
            mask_cnt = mask_cnt / mask_cnt.max()
            mask[cnt, :, :] = mask_cnt
    return mask


# ---- tests


@pytest.mark.parametrize("h,w,r", [(5, 7, 2), (6, 4, 0), (3, 3, 12), (8, 9, 3)])
def test_neighborhood_mask_equals_dino_loops(h, w, r):
    assert torch.equal(neighborhood_mask(h, w, r), _dino_restrict_neighborhood(h, w, r))


@pytest.mark.parametrize("n_ctx,size,topk", [(1, 2, 5), (4, 1, 5), (8, 0, 3)])
def test_propagate_step_equals_dino(n_ctx, size, topk):
    g = torch.Generator().manual_seed(n_ctx)
    h, w, d, c = 5, 6, 8, 3
    feats = [torch.randn(h * w, d, generator=g) for _ in range(n_ctx + 1)]
    segs = [torch.rand(1, c, h, w, generator=g) for _ in range(n_ctx)]
    ref = _dino_label_propagation(feats[0], [f.T for f in feats[1:]], segs, h, w, size, topk)
    mask = neighborhood_mask(h, w, size) if size > 0 else None
    ours = propagate_step(
        F.normalize(feats[0], dim=-1),
        F.normalize(torch.stack(feats[1:]), dim=-1),
        torch.cat(segs).flatten(2),
        mask,
        topk,
        0.1,
    )
    torch.testing.assert_close(ours.reshape(1, c, h, w), ref, rtol=1e-5, atol=1e-6)


def test_labels_to_mask_equals_dino():
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(3, 4, 5, generator=g)
    soft[2] = 0  # a channel that never fires (max 0: left as is)
    up = F.interpolate(soft[None].clone(), scale_factor=8, mode="bilinear", align_corners=False)[0]
    _, seg = torch.max(_dino_norm_mask(up), dim=0)
    ref = np.array(Image.fromarray(np.array(seg, dtype=np.uint8)).resize((37, 29), 0))
    assert np.array_equal(labels_to_mask(soft, 8, (29, 37)), ref)


def test_target_size_follows_dino_rule():
    assert target_size(480, 854, 480, 64) == (480, 832)  # DAVIS 480p: 854 floored to a multiple of 64
    assert target_size(1080, 720, 480, 64) == (704, 480)  # portrait: width 480, height 720 -> 704
    assert target_size(96, 128, 96, 64) == (96, 128)


class IdentityLike:
    """Patch size 1, one-hot position features: each pixel is most similar to itself."""

    patch_size = 1

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        b, _, h, w = frames.shape
        return torch.eye(h * w).reshape(h * w, h, w).permute(1, 2, 0).expand(b, h, w, h * w)


def _static_video(root, n_frames=6, size=(12, 16), annotated=None, jpg_size=None):
    rng = np.random.default_rng(0)
    frame = Image.fromarray(rng.integers(0, 255, size=(*(jpg_size or size), 3), dtype=np.uint8))
    mask = np.zeros(size, np.uint8)
    mask[2:7, 3:9] = 1
    mask[8:11, 10:15] = 2
    mask[0, 0] = 255
    for i in range(n_frames):
        (root / "JPEGImages" / "s").mkdir(parents=True, exist_ok=True)
        frame.save(root / "JPEGImages" / "s" / f"{i:05d}.jpg", quality=95)
        if annotated is None or i in annotated:
            write_indexed_png(root / "Annotations" / "s" / f"{i:05d}.png", mask, voc_palette())
    (root / "ImageSets").mkdir(exist_ok=True)
    (root / "ImageSets" / "val.txt").write_text("s\n")
    return mask


def test_identity_extractor_copies_first_mask_on_static_video(tmp_path):
    mask = _static_video(tmp_path / "d")
    cfg = PropagationConfig(short_side=12, size_multiple=16)
    layout = make_layout(tmp_path / "d", "vost")
    n = propagate_split(layout, "val", IdentityLike(), cfg, tmp_path / "pred", progress=None)
    assert n == 6
    expected = np.where(mask == 255, 0, mask)
    for i in range(1, 6):
        out = Image.open(tmp_path / "pred" / "s" / f"{i:05d}.png")
        assert out.mode == "P" and out.getpalette()[3:6] == [128, 0, 0]
        assert np.array_equal(np.array(out), expected), f"frame {i}"
    assert np.array_equal(np.array(Image.open(tmp_path / "pred" / "s" / "00000.png")), mask)  # frame 0 = GT


def test_propagation_bad_inputs_name_their_files(tmp_path):
    cfg = PropagationConfig(short_side=12, size_multiple=16)
    # an annotated frame without a JPEG
    _static_video(tmp_path / "a")
    (tmp_path / "a" / "JPEGImages" / "s" / "00003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"frame .*00003\.jpg is missing: annotation .*00003\.png"):
        propagate_split(make_layout(tmp_path / "a", "vost"), "val", IdentityLike(), cfg, tmp_path / "o", progress=None)
    # first annotation and frame of different size
    _static_video(tmp_path / "b", jpg_size=(14, 16))
    with pytest.raises(ValueError, match=r"00000\.png: size 16x12 \(WxH\) does not match .*00000\.jpg \(16x14\)"):
        propagate_split(make_layout(tmp_path / "b", "vost"), "val", IdentityLike(), cfg, tmp_path / "o", progress=None)
    # RGB first annotation
    _static_video(tmp_path / "c")
    rgb = tmp_path / "c" / "Annotations" / "s" / "00000.png"
    Image.new("RGB", (16, 12)).save(rgb)
    with pytest.raises(ValueError, match=f"{rgb}: mask is a RGB image"):
        propagate_split(make_layout(tmp_path / "c", "vost"), "val", IdentityLike(), cfg, tmp_path / "o", progress=None)


@pytest.mark.slow
def test_eval_vost_demo_end_to_end(tmp_path):
    from tokes_bench.results.records import read_records

    results = tmp_path / "r.jsonl"
    argv = ["eval", "vost", "--encoder", "random:vit_tiny_patch16_224", "--demo", "--work-dir", str(tmp_path)]
    assert main([*argv, "--results", str(results)]) == 0
    recs = {r["metric"]: r for r in read_records(results)}
    assert set(recs) == {"J", "J_tr"}
    assert recs["J"]["task"] == "vost" and recs["J"]["dataset"] == "vost-demo" and recs["J"]["method"] == "random"
    import pandas as pd

    g = pd.read_csv(tmp_path / "global_results-val.csv")
    assert recs["J"]["value"] == pytest.approx(100 * g["J-Mean"].iloc[0], abs=0.05)
    assert recs["J_tr"]["value"] == pytest.approx(100 * g["J_last-Mean"].iloc[0], abs=0.05)
    frames = sorted((tmp_path / "vost-demo-data" / "JPEGImages_10fps").glob("*/*.jpg"))
    preds = sorted((tmp_path / "predictions").glob("*/*.png"))
    assert [p.stem for p in preds] == [f.stem for f in frames] and len(preds) == 60


def test_native_img_size_reads_the_checkpoint_grid(tmp_path):
    from tokes_bench.adapters.vost.propagation import native_img_size
    from tokes_bench.models import build_encoder, save_encoder

    path = tmp_path / "enc.safetensors"
    model = build_encoder("vit_tiny_patch16_224", img_size=64)  # 4 x 4 grid of 16-px patches
    save_encoder(path, model.state_dict(), {"arch": "vit_tiny_patch16_224", "method": "other"})
    assert native_img_size(str(path)) == 64
    assert native_img_size("random:vit_tiny_patch16_224") == 224


class ConvFeatures:
    """A fixed random patch embedding: content-dependent features without a ViT."""

    patch_size = 8

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 24, kernel_size=8, stride=8)

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return self.conv(frames).permute(0, 2, 3, 1)


def test_whole_video_equals_dino_loop(tmp_path):
    """Context queue, first frame and output handling match DINO's eval_video_tracking_davis."""
    from tokes_bench.adapters.vost.propagation import first_frame_labels, load_frame, propagate_video
    from tokes_bench.data.vost_demo import write_vost_demo

    root = write_vost_demo(tmp_path, n_sequences=1, n_frames=12, size=(48, 64), seed=5)
    frames = sorted((root / "JPEGImages_10fps" / "00_cut").glob("*.jpg"))
    first = np.array(Image.open(root / "Annotations" / "00_cut" / "frame00000.png"))
    ex = ConvFeatures()
    cfg = PropagationConfig(n_last_frames=3, size_mask_neighborhood=2, topk=4, short_side=48, size_multiple=16)
    ours: dict[int, np.ndarray] = {}
    propagate_video(frames, first, ex, cfg, lambda i, m: ours.__setitem__(i, m))

    def feat(path):  # DINO's extract_feature: (h*w, dim)
        return ex(load_frame(path, (48, 64))[0][None])[0].reshape(-1, 24)

    h, w = 6, 8
    first_seg = first_frame_labels(first, (h, w))[None]
    frame1_feat = feat(frames[0]).T
    que: list = []
    for cnt in range(1, len(frames)):
        feat_tar = feat(frames[cnt])
        used_feats = [frame1_feat] + [q[0] for q in que]
        used_segs = [first_seg] + [q[1] for q in que]
        seg = _dino_label_propagation(feat_tar, used_feats, used_segs, h, w, 2, 4)
        if len(que) == 3:
            que.pop(0)
        que.append([feat_tar.T, seg.clone()])
        up = F.interpolate(seg, scale_factor=8, mode="bilinear", align_corners=False)[0]
        _, ids = torch.max(_dino_norm_mask(up), dim=0)
        ref = np.array(Image.fromarray(np.array(ids, dtype=np.uint8)).resize((64, 48), 0))
        assert np.array_equal(ours[cnt], ref), f"frame {cnt}"
    assert np.array_equal(ours[0], first)


def test_demo_generator_is_deterministic_and_rewritable(tmp_path):
    from tokes_bench.data.vost_demo import write_vost_demo

    def snapshot(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = snapshot(write_vost_demo(tmp_path / "a", n_frames=6, size=(32, 48)))
    root = write_vost_demo(tmp_path / "b", n_frames=9, size=(32, 48))
    assert snapshot(write_vost_demo(root, n_frames=6, size=(32, 48))) == a  # same seed, no stale frames
    masks = [np.array(Image.open(tmp_path / "a" / "Annotations" / "00_cut" / f"frame{i:05d}.png")) for i in (0, 5)]
    assert (masks[0] == 1).any() and not np.array_equal(masks[0], masks[1])  # the object moves and splits
