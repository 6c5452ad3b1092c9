"""Pretraining objectives (TOKES, MAE) as mmengine models, their data, hooks and runner wrapper.

Importing this package registers the models, dataset, sampler and hooks in mmengine's root
registries (configs load it through `custom_imports`).
"""

from tokes_bench.pretrain import data, hooks, mae, tokes  # noqa: F401
