"""A torchvision-backed stand-in for `mmcv._ext`, so mmdet and mmseg run on mmcv-lite.

mmcv's compiled ops do not build against torch 2.14 without patches (shared/design.md section 2).
mmcv's Python op wrappers only call `ext_loader.load_ext('_ext', [...])`, so a module registered
as `mmcv._ext` that implements the ops the shipped configs reach (nms, roi_align) with torchvision
makes `import mmdet.models, mmseg.models` and Mask R-CNN / UperNet training work. Every other op
name resolves to a function that raises `UnsupportedOpError` naming the op. When a compiled mmcv
is installed, `install()` does nothing and mmcv's own ops are used.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the ops themselves, so `import tokes_bench` stays light
    import torch

MODULE_NAME = "mmcv._ext"
_PROVIDER_FLAG = "__tokes_bench_provider__"


class UnsupportedOpError(RuntimeError):
    """An mmcv op that the torchvision-backed provider does not implement."""


def _compiled_ext_path() -> Path | None:
    """Path of a compiled `mmcv/_ext*.so` next to the installed mmcv, without importing mmcv."""
    spec = importlib.util.find_spec("mmcv")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for candidate in Path(location).glob("_ext*"):
            if candidate.suffix in (".so", ".pyd"):
                return candidate
    return None


def ops_source() -> str:
    """Where mmcv's ops come from in this process: 'compiled', 'provided (torchvision)' or 'none'."""
    module = sys.modules.get(MODULE_NAME)
    if module is not None and getattr(module, _PROVIDER_FLAG, False):
        return "provided by tokes-bench (torchvision)"
    if _compiled_ext_path() is not None:
        return f"compiled ({_compiled_ext_path()})"
    if importlib.util.find_spec("mmcv") is None:
        return "none (mmcv not installed)"
    return "none (provider not installed)"


# --- ops ------------------------------------------------------------------------------------------


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """mmcv's `nms` op: kept indices in descending score order, ties kept in input order.

    `offset=1` is mmcv's legacy pixel convention (width = x2 - x1 + 1); it equals IoU of boxes whose
    far corner is shifted by one, which is how it is computed here.
    """
    import torch
    import torchvision

    if offset not in (0, 1):
        raise ValueError(f"mmcv nms: offset must be 0 or 1, got {offset}")
    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order].float()
    if offset:
        sorted_boxes = sorted_boxes.clone()
        sorted_boxes[:, 2:] += 1
    # Strictly decreasing surrogate scores make torchvision's (unstable) sort keep our tie order.
    rank = torch.arange(order.numel(), 0, -1, dtype=torch.float32, device=boxes.device)
    keep = torchvision.ops.nms(sorted_boxes, rank, float(iou_threshold))
    return order[keep]


def _check_avg(pool_mode: int) -> None:
    if pool_mode != 1:
        raise UnsupportedOpError(
            "mmcv op 'roi_align' with pool_mode='max' is not provided by tokes-bench's torchvision-backed "
            "mmcv._ext (torchvision implements average pooling only); install a compiled mmcv to use it"
        )


def roi_align_forward(
    input,
    rois,
    output,
    argmax_y,
    argmax_x,
    aligned_height=7,
    aligned_width=7,
    spatial_scale=1.0,
    sampling_ratio=0,
    pool_mode=1,
    aligned=True,
) -> None:
    """mmcv's `roi_align_forward`: fills the preallocated `output` in place (average pooling)."""
    import torchvision

    _check_avg(pool_mode)
    result = torchvision.ops.roi_align(
        input,
        rois.to(input.dtype),
        (int(aligned_height), int(aligned_width)),
        spatial_scale=float(spatial_scale),
        sampling_ratio=int(sampling_ratio),
        aligned=bool(aligned),
    )
    output.copy_(result)


def roi_align_backward(
    grad_output,
    rois,
    argmax_y,
    argmax_x,
    grad_input,
    aligned_height=7,
    aligned_width=7,
    spatial_scale=1.0,
    sampling_ratio=0,
    pool_mode=1,
    aligned=True,
) -> None:
    """mmcv's `roi_align_backward`: fills the preallocated `grad_input` in place."""
    import torch
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)

    _check_avg(pool_mode)
    n, c, h, w = grad_input.shape
    grad = torch.ops.torchvision._roi_align_backward(
        grad_output.contiguous(),
        rois.to(grad_output.dtype),
        float(spatial_scale),
        int(aligned_height),
        int(aligned_width),
        n,
        c,
        h,
        w,
        int(sampling_ratio),
        bool(aligned),
    )
    grad_input.copy_(grad)


def get_compiler_version() -> str:
    return "none (tokes-bench torchvision-backed ops)"


def get_compiling_cuda_version() -> str:
    return "not compiled"


_PROVIDED = {
    "nms": nms,
    "roi_align_forward": roi_align_forward,
    "roi_align_backward": roi_align_backward,
    "get_compiler_version": get_compiler_version,
    "get_compiling_cuda_version": get_compiling_cuda_version,
}
PROVIDED_OPS = tuple(sorted(_PROVIDED))


def _unsupported(name: str):
    def op(*args, **kwargs):
        raise UnsupportedOpError(
            f"mmcv op {name!r} is not provided by tokes-bench's torchvision-backed mmcv._ext "
            f"(provided: {', '.join(PROVIDED_OPS)}). Install a compiled mmcv 2.1 "
            "(`pip uninstall mmcv-lite && MMCV_WITH_OPS=1 pip install mmcv==2.1.0 --no-build-isolation`; "
            "on torch 2.14 its setup.py needs -std=c++20) to use configs that need it."
        )

    op.__name__ = name
    return op


class _ProviderModule(types.ModuleType):
    """`mmcv._ext` stand-in: real ops from `_PROVIDED`, any other name an op that raises on call."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _unsupported(name)


def build_module() -> types.ModuleType:
    """A fresh provider module (not registered)."""
    module = _ProviderModule(MODULE_NAME, __doc__)
    # A loader-less spec: importlib/pkgutil lookups (mmengine's `mmcv_full_available`) then work and
    # truthfully report that no compiled mmcv is present.
    module.__spec__ = importlib.machinery.ModuleSpec(MODULE_NAME, None)
    for name, fn in _PROVIDED.items():
        setattr(module, name, fn)
    setattr(module, _PROVIDER_FLAG, True)
    return module


def install() -> bool:
    """Register the provider as `mmcv._ext` unless a compiled mmcv is present; True if installed."""
    if MODULE_NAME in sys.modules:
        return bool(getattr(sys.modules[MODULE_NAME], _PROVIDER_FLAG, False))
    if importlib.util.find_spec("mmcv") is None or _compiled_ext_path() is not None:
        return False
    sys.modules[MODULE_NAME] = build_module()
    return True
