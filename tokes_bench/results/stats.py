"""Seed statistics for leaderboards: mean, sample std, percentile-bootstrap 95% intervals.

Intervals are percentile bootstraps of the mean (one sample), of the mean paired difference
(two samples matched by seed) or of the difference of means (two independent samples). With
fewer than two values in a sample there is no spread to resample: the interval is (NaN, NaN),
never a zero-width interval.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

CI_LEVEL = 0.95


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); std is NaN for a single value."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else float("nan")


def row_rng(seed: int, key: str) -> np.random.Generator:
    """A generator for one table row: seeded by (seed, crc32(key)) so rows don't depend on order."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8"))])


def _percentile_interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def bootstrap_mean_ci(
    values: Sequence[float], n_boot: int, rng: np.random.Generator, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of one sample; (NaN, NaN) below two values."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float("nan"), float("nan")
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    return _percentile_interval(x[idx].mean(axis=1), level)


def bootstrap_diff_ci(
    a: Sequence[float],
    b: Sequence[float],
    paired: bool,
    n_boot: int,
    rng: np.random.Generator,
    level: float = CI_LEVEL,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of mean(a) - mean(b).

    paired=True: a[i] and b[i] share a seed; the per-seed differences are resampled together.
    paired=False: a and b are resampled independently (a's draws first, then b's).
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if xa.shape != xb.shape:
            raise ValueError(f"paired bootstrap needs equal lengths, got {xa.size} and {xb.size}")
        return bootstrap_mean_ci(xa - xb, n_boot, rng, level)
    if xa.size < 2 or xb.size < 2:
        return float("nan"), float("nan")
    ia = rng.integers(0, xa.size, size=(n_boot, xa.size))
    ib = rng.integers(0, xb.size, size=(n_boot, xb.size))
    return _percentile_interval(xa[ia].mean(axis=1) - xb[ib].mean(axis=1), level)
