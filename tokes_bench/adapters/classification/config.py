"""Settings of the frozen-feature protocols (linear probe, kNN): defaults, config files, validation.

Defaults are the published protocols (MAE's linear probe, DINO's kNN) for ImageNet-size data; a
config file (mmengine `.py`, `_base_` allowed) and `--cfg-options` override them. Unknown keys
and wrongly typed values are errors naming the key and the file, so a typo never runs silently
with a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tokes_bench.engine import parse_cfg_options

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLS = ("token", "avg")


@dataclass
class FeatureSettings:
    """How frozen features are made: encoder arch check, image geometry, pooling, loader."""

    protocol: str = ""
    arch: str | None = None  # when set, the encoder must have this arch
    dataset: str | None = None  # name in the records; default: the data folder's name
    img_size: int = 224
    crop_pct: float = 0.875  # eval transform: resize short side to img_size / crop_pct, center crop
    interpolation: str = "bicubic"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    pool: str = "token"  # 'token': cls token after the final norm; 'avg': mean patch token + fc_norm
    extract_batch_size: int = 128
    num_workers: int = 4
    cache_features: bool = True  # keep extracted features in <work-dir>/features for reuse

    def validate(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"config key 'pool' = {self.pool!r}, expected one of {POOLS}")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"config key 'crop_pct' = {self.crop_pct!r}, expected 0 < crop_pct <= 1")


@dataclass
class LinearSettings(FeatureSettings):
    """MAE linear probe: BatchNorm1d(affine=False) + linear head on frozen features, LARS, cosine."""

    protocol: str = "linear"
    aug_views: int = 0  # extra RandomResizedCrop+flip views of the train set (0: center crops only)
    aug_scale: tuple = (0.08, 1.0)
    aug_hflip: float = 0.5
    optimizer: str = "lars"  # 'lars' or 'sgd'
    blr: float = 0.1
    lr: float | None = None  # absolute lr; default blr * batch_size / 256
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 16384
    epochs: int = 90
    warmup_epochs: int = 10
    min_lr: float = 0.0
    log_interval_s: float = 10.0

    def validate(self) -> None:
        super().validate()
        if self.optimizer not in ("lars", "sgd"):
            raise ValueError(f"config key 'optimizer' = {self.optimizer!r}, expected 'lars' or 'sgd'")
        if self.epochs < 1 or self.batch_size < 2 or self.aug_views < 0:
            raise ValueError(
                f"config needs epochs >= 1, batch_size >= 2, aug_views >= 0; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, aug_views={self.aug_views}"
            )


@dataclass
class KnnSettings(FeatureSettings):
    """DINO's weighted kNN: cosine similarity, k neighbours, votes weighted by exp(sim / T)."""

    protocol: str = "knn"
    k: int = 20
    temperature: float = 0.07

    def validate(self) -> None:
        super().validate()
        if self.k < 1 or self.temperature <= 0:
            raise ValueError(f"config needs k >= 1 and temperature > 0; got k={self.k}, T={self.temperature}")


def load_mm_config(path: str | Path | None, options: dict):
    """mmengine Config from `path` (empty when None) with dotted `options` merged in."""
    from mmengine.config import Config

    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    cfg = Config.fromfile(str(path)) if path is not None else Config()
    if options:
        cfg.merge_from_dict(options)
    return cfg


def _coerce(name: str, value, default, where: str):
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if default is None or value is None or isinstance(value, type(default)):
        return value
    raise ValueError(f"{where}: config key {name!r} = {value!r} should be {type(default).__name__}")


def settings_from_config(cls: type, path: str | Path | None, cfg_options: list[str] | None):
    """Build a `cls` settings object from defaults, a config file and `--cfg-options`."""
    where = str(path) if path else "--cfg-options"
    data = load_mm_config(path, parse_cfg_options(cfg_options)).to_dict()
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise KeyError(f"{where}: unknown config key(s) {unknown}; known keys: {sorted(known)}")
    defaults = cls()
    values = {k: _coerce(k, v, getattr(defaults, k), where) for k, v in data.items()}
    settings = cls(**values)
    if settings.protocol != defaults.protocol:
        raise ValueError(
            f"{where}: config is for protocol {settings.protocol!r}, this command runs {defaults.protocol!r}"
        )
    settings.validate()
    return settings


def as_dict(settings) -> dict:
    """Settings as a plain dict (for config hashes and record extras)."""
    return dataclasses.asdict(settings)
