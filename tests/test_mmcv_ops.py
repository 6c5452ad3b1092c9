"""The torchvision-backed mmcv._ext provider against independent reference computations."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

import tokes_bench  # noqa: F401  (registers the provider)
from tokes_bench.adapters import mmcv_ops


def _iou(a: list[float], b: list[float], offset: int) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
    inter = iw * ih
    area = lambda r: (r[2] - r[0] + offset) * (r[3] - r[1] + offset)
    return inter / (area(a) + area(b) - inter)


def brute_force_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float, offset: int = 0) -> list[int]:
    """Greedy NMS in plain Python: highest score first, ties in input order."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep: list[int] = []
    for i in order:
        if all(_iou(boxes[i].tolist(), boxes[k].tolist(), offset) <= thr for k in keep):
            keep.append(i)
    return keep


def _random_boxes(n: int, gen: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * 50
    wh = torch.rand(n, 2, generator=gen) * 30 + 1
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_brute_force(seed: int, offset: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    boxes = _random_boxes(60, gen)
    scores = torch.rand(60, generator=gen)
    keep = mmcv_ops.nms(boxes, scores, 0.3, offset=offset)
    assert keep.tolist() == brute_force_nms(boxes, scores, 0.3, offset)


def test_nms_ties_keep_input_order_and_duplicates_suppressed() -> None:
    gen = torch.Generator().manual_seed(7)
    boxes = _random_boxes(40, gen)
    boxes = torch.cat([boxes, boxes[:10]])  # exact duplicates: IoU 1 with their originals
    scores = (torch.rand(50, generator=gen) * 4).floor() / 4  # only 4 distinct values: many ties
    keep = mmcv_ops.nms(boxes, scores, 0.5)
    assert keep.tolist() == brute_force_nms(boxes, scores, 0.5)
    assert len(set(scores.tolist())) <= 4 and len(keep) < len(boxes)


def test_nms_empty_input() -> None:
    keep = mmcv_ops.nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.long


def test_batched_nms_through_mmcv_uses_provider(monkeypatch) -> None:
    from mmcv.ops import batched_nms

    calls = []
    ext = sys.modules["mmcv._ext"]
    real = ext.nms
    monkeypatch.setattr(ext, "nms", lambda *a, **k: calls.append(1) or real(*a, **k))
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    idxs = torch.tensor([0, 0, 1])  # third box is another class: never suppressed by the first
    dets, keep = batched_nms(boxes, scores, idxs, dict(type="nms", iou_threshold=0.5))
    assert calls, "mmcv.ops.batched_nms did not reach the provider"
    assert sorted(keep.tolist()) == [0, 2]
    assert torch.allclose(dets[:, 4], torch.tensor([0.9, 0.7]))


def _bilinear(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """Bilinear sample of (C, H, W) at (y, x) with mmcv/caffe2 RoIAlign's border rules."""
    _, h, w = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return torch.zeros(img.shape[0], dtype=img.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx * img[:, y0, x1]
            + ly * (1 - lx) * img[:, y1, x0] + ly * lx * img[:, y1, x1])


def reference_roi_align(feat, rois, out_hw, scale, sampling_ratio, aligned) -> torch.Tensor:
    """RoIAlign (average mode) written out directly from its definition."""
    ph, pw = out_hw
    out = torch.zeros(len(rois), feat.shape[1], ph, pw, dtype=feat.dtype)
    off = 0.5 if aligned else 0.0
    for r, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = x1 * scale - off, y1 * scale - off, x2 * scale - off, y2 * scale - off
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / ph)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / pw)
        for i in range(ph):
            for j in range(pw):
                acc = torch.zeros(feat.shape[1], dtype=feat.dtype)
                for iy in range(gh):
                    for ix in range(gw):
                        y = y1 + i * bh + (iy + 0.5) * bh / gh
                        x = x1 + j * bw + (ix + 0.5) * bw / gw
                        acc += _bilinear(feat[int(b)], y, x)
                out[r, :, i, j] = acc / max(gh * gw, 1)
    return out


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_forward_matches_reference(aligned: bool, sampling_ratio: int) -> None:
    from mmcv.ops import roi_align

    gen = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    rois = torch.tensor([[0, 1.0, 1.0, 6.0, 5.0], [1, 0.0, 2.5, 10.0, 8.0], [1, 3.3, 0.2, 4.1, 1.1],
                         [0, -2.0, -1.0, 3.0, 12.0]], dtype=torch.float64)
    got = roi_align(feat, rois, (3, 2), 0.5 if aligned else 1.0, sampling_ratio, "avg", aligned)
    want = reference_roi_align(feat, rois, (3, 2), 0.5 if aligned else 1.0, sampling_ratio, aligned)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_roi_align_hand_case_constant_and_ramp() -> None:
    """On f(y, x) = x, an aligned RoI's bins average to their centre x: known by hand."""
    from mmcv.ops import roi_align

    feat = torch.arange(8, dtype=torch.float64).repeat(8, 1)[None, None]  # value = column index
    rois = torch.tensor([[0, 2.0, 2.0, 6.0, 6.0]], dtype=torch.float64)  # pixel coords, aligned
    out = roi_align(feat, rois, (2, 2), 1.0, 2, "avg", True)
    # box [2, 6) shifted by -0.5 -> [1.5, 5.5); bin centres at x = 2.5 and 4.5
    torch.testing.assert_close(out[0, 0], torch.tensor([[2.5, 4.5], [2.5, 4.5]], dtype=torch.float64))


def test_roi_align_backward_gradcheck() -> None:
    from mmcv.ops import roi_align

    gen = torch.Generator().manual_seed(1)
    feat = torch.rand(1, 2, 6, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.7, 1.3, 5.2, 4.9], [0, 2.1, 0.4, 6.3, 3.3]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, (2, 3), 1.0, 2, "avg", True), (feat,))


def test_unsupported_op_names_the_op() -> None:
    ext = sys.modules["mmcv._ext"]
    with pytest.raises(mmcv_ops.UnsupportedOpError, match="deform_conv_forward"):
        ext.deform_conv_forward(torch.zeros(1))


def test_roi_align_max_mode_is_a_clear_error() -> None:
    from mmcv.ops import roi_align

    with pytest.raises(mmcv_ops.UnsupportedOpError, match="pool_mode='max'"):
        roi_align(torch.rand(1, 1, 4, 4), torch.tensor([[0, 0.0, 0.0, 2.0, 2.0]]), (2, 2), 1.0, 0, "max", True)


def test_provider_answers_module_lookups_as_not_compiled() -> None:
    from mmengine.utils.dl_utils import mmcv_full_available

    assert mmcv_full_available() is False  # pkgutil.find_loader('mmcv._ext') must not raise


def test_provider_steps_aside_for_compiled_mmcv(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(mmcv_ops, "_compiled_ext_path", lambda: tmp_path / "_ext.so")
    monkeypatch.delitem(sys.modules, mmcv_ops.MODULE_NAME)
    assert mmcv_ops.install() is False
    assert mmcv_ops.MODULE_NAME not in sys.modules


def test_fresh_interpreter_imports_mmdet_and_mmseg_models() -> None:
    code = (
        "import sys, tokes_bench; import mmdet.models, mmseg.models; "
        "from mmcv.ops import nms, roi_align; "
        "assert getattr(sys.modules['mmcv._ext'], '__tokes_bench_provider__', False); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
