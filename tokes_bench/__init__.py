"""tokes-bench: pretrain ViT encoders with TOKES or MAE and evaluate them downstream, reproducibly."""

from tokes_bench import adapters  # noqa: F401  (registers the torchvision-backed mmcv ops provider)

__version__ = "0.1.0"
