"""A real mmdet Mask R-CNN training step and inference on CPU through the provided mmcv ops."""

from __future__ import annotations

import sys

import pytest
import torch

import tokes_bench  # noqa: F401  (registers the provider)


def _tiny_mask_rcnn():
    from pathlib import Path

    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules()
    cfg = Config.fromfile(Path(mmdet.__file__).parent / ".mim/configs/_base_/models/mask-rcnn_r50_fpn.py").model
    cfg.backbone.update(depth=18, init_cfg=None, norm_cfg=dict(type="BN", requires_grad=True))
    cfg.neck.update(in_channels=[64, 128, 256, 512], out_channels=32)
    cfg.rpn_head.update(in_channels=32, feat_channels=32)
    cfg.roi_head.bbox_roi_extractor.out_channels = 32
    cfg.roi_head.mask_roi_extractor.out_channels = 32
    cfg.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64, num_classes=3)
    cfg.roi_head.mask_head.update(in_channels=32, conv_out_channels=32, num_classes=3)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _sample(h: int = 96, w: int = 128):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    img = torch.rand(3, h, w) * 255
    boxes = torch.tensor([[10.0, 12.0, 60.0, 70.0], [70.0, 20.0, 120.0, 90.0]])
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
        masks[i, y1:y2, x1:x2] = 1
    gt = InstanceData(bboxes=boxes, labels=torch.tensor([0, 2]), masks=BitmapMasks(masks.numpy(), h, w))
    sample = DetDataSample(gt_instances=gt)
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=(1.0, 1.0),
                batch_input_shape=(h, w))
    sample.set_metainfo(meta)
    return dict(inputs=[img], data_samples=[sample])


@pytest.mark.slow
def test_mask_rcnn_loss_backward_and_predict_run_through_provider(monkeypatch) -> None:
    ext = sys.modules["mmcv._ext"]
    calls: dict[str, int] = {}
    for name in ("nms", "roi_align_forward", "roi_align_backward"):
        real = getattr(ext, name)
        monkeypatch.setattr(ext, name, lambda *a, _r=real, _n=name, **k: calls.update({_n: calls.get(_n, 0) + 1})
                            or _r(*a, **k))
    model = _tiny_mask_rcnn()
    model.train()
    data = model.data_preprocessor(_sample(), training=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    for key in ("loss_rpn_cls", "loss_cls", "loss_bbox", "loss_mask"):
        assert any(k.startswith(key) for k in losses), f"missing {key} in {sorted(losses)}"
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v) for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    grad = model.backbone.layer4[0].conv1.weight.grad  # conv1 + layer1 are frozen in the base config
    assert grad is not None and grad.abs().sum() > 0
    assert calls.get("nms", 0) > 0 and calls.get("roi_align_forward", 0) > 0 and calls.get("roi_align_backward", 0) > 0

    model.eval()
    with torch.no_grad():
        results = model.test_step(_sample())
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores) == len(pred.masks)


@pytest.mark.slow
def test_mmseg_upernet_loss_and_predict_run_on_provided_ops() -> None:
    from pathlib import Path

    import mmseg
    from mmengine.config import Config
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(Path(mmseg.__file__).parent / ".mim/configs/_base_/models/upernet_r50.py").model
    cfg.data_preprocessor = dict(type="SegDataPreProcessor", mean=[0, 0, 0], std=[1, 1, 1], size=(64, 64))
    cfg.backbone.update(type="ResNetV1c", depth=18, norm_cfg=dict(type="BN", requires_grad=True), init_cfg=None)
    for head in (cfg.decode_head, cfg.auxiliary_head):
        head.update(norm_cfg=dict(type="BN", requires_grad=True), num_classes=4, channels=16)
    cfg.decode_head.in_channels = [64, 128, 256, 512]
    cfg.auxiliary_head.in_channels = 256
    model = MODELS.build(cfg)
    samples = []
    for _ in range(2):  # batch of 2: the PPM's 1x1 pooled branch has BatchNorm
        sample = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 4, (1, 64, 64))))
        sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        samples.append(sample)
    batch = dict(inputs=[torch.rand(3, 64, 64) * 255 for _ in samples], data_samples=samples)
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data["inputs"], data["data_samples"])
    total = sum(v for k, v in losses.items() if "loss" in k)
    total.backward()
    assert torch.isfinite(total) and model.decode_head.conv_seg.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        pred = model.test_step(batch)
    assert pred[0].pred_sem_seg.data.shape == (1, 64, 64)
