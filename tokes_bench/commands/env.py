"""`tokes-bench env`: versions of the toolchain and where the mmcv ops come from."""

from __future__ import annotations

import argparse

COMMAND = ("env",)
HELP = "print versions of torch, timm, mmengine, mmcv (compiled or provided ops), mmdet, mmseg and the device"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def run(args: argparse.Namespace) -> int:
    import json
    import platform

    import mmcv
    import mmdet
    import mmengine
    import mmseg
    import timm
    import torch
    import torchvision

    from tokes_bench.adapters import mmcv_ops

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "mmengine": mmengine.__version__,
        "mmcv": f"{mmcv.__version__} (ops: {mmcv_ops.ops_source()})",
        "mmdet": mmdet.__version__,
        "mmseg": mmseg.__version__,
        "device": device,
    }
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k:12s} {v}")
    return 0
