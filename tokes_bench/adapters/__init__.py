"""Downstream adapters. Importing this package registers the mmcv ops provider, once, here only."""

from tokes_bench.adapters import mmcv_ops

mmcv_ops.install()
