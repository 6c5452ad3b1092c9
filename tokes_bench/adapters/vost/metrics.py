"""Per-frame region (J) and boundary (F) measures and the mean / recall / decay statistics.

Definitions follow davis2017-evaluation (`davis2017/metrics.py`, `davis2017/utils.py`), which the
VOST evaluation copies: J = |G & P| / |G | P| with 1 when both are empty; F = boundary F-measure
with 1-pixel boundaries matched within a disk of radius ceil(0.008 x image diagonal). Masks are
handled one frame at a time as uint8 id maps, never as a float64 one-hot video.
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np

from tokes_bench.adapters.vost.layout import VOID

BOUND_TH = 0.008
RECALL_TH = 0.5


def _split_void(gt: np.ndarray, ignore_void: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Ground truth with void handled: turned into background (official) or returned as a mask to skip."""
    if int(gt.max(initial=0)) < VOID:
        return gt, None
    void = gt == VOID
    gt = np.where(void, 0, gt).astype(np.uint8)
    return gt, (void if ignore_void else None)


def frame_jaccard(gt: np.ndarray, pred: np.ndarray, n_objects: int, ignore_void: bool = False) -> np.ndarray:
    """J of objects 1..n_objects in one frame (both empty -> 1); `pred` ids above n_objects count for none."""
    gt, void = _split_void(gt, ignore_void)
    valid = None if void is None else ~void
    out = np.empty(n_objects, dtype=np.float64)
    for k in range(n_objects):
        g = gt == k + 1
        p = pred == k + 1
        if valid is not None:
            g &= valid
            p &= valid
        inter = np.count_nonzero(g & p)
        union = np.count_nonzero(g) + np.count_nonzero(p) - inter
        out[k] = 1.0 if union == 0 else inter / union
    return out


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-pixel boundary of a binary mask: pixels unlike their right, lower or lower-right neighbour."""
    seg = mask.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """Disk structuring element: offsets with x^2 + y^2 <= radius^2 (as skimage.morphology.disk)."""
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).astype(np.uint8)


def bound_radius(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Matching tolerance in pixels: ceil(bound_th x diagonal), or bound_th itself when it is >= 1."""
    return int(bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*shape[:2])))


def boundary_f(
    gt_mask: np.ndarray, pred_mask: np.ndarray, void: np.ndarray | None = None, bound_th: float = BOUND_TH
) -> float:
    """Boundary F-measure of one binary prediction against one binary ground truth."""
    if void is not None:
        gt_mask = gt_mask & ~void
        pred_mask = pred_mask & ~void
    fg_b = boundary_map(pred_mask)
    gt_b = boundary_map(gt_mask)
    n_fg = int(np.count_nonzero(fg_b))
    n_gt = int(np.count_nonzero(gt_b))
    if n_fg == 0 or n_gt == 0:
        precision = 1.0 if n_fg == 0 else 0.0
        recall = 1.0 if n_gt == 0 else 0.0
    else:
        se = disk(bound_radius(gt_mask.shape, bound_th))
        fg_dil = cv2.dilate(fg_b.view(np.uint8), se).astype(bool)
        gt_dil = cv2.dilate(gt_b.view(np.uint8), se).astype(bool)
        precision = np.count_nonzero(fg_b & gt_dil) / n_fg
        recall = np.count_nonzero(gt_b & fg_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def frame_boundary_f(
    gt: np.ndarray, pred: np.ndarray, n_objects: int, ignore_void: bool = False, bound_th: float = BOUND_TH
) -> np.ndarray:
    """F of objects 1..n_objects in one frame."""
    gt, void = _split_void(gt, ignore_void)
    return np.array(
        [boundary_f(gt == k + 1, pred == k + 1, void, bound_th) for k in range(n_objects)], dtype=np.float64
    )


def last_quarter_start(n_frames: int) -> int:
    """First index of J_last (VOST's J_tr): floor(0.75 x number of scored frames)."""
    return int(math.floor(n_frames * 0.75))


def decay_bin_edges(n_frames: int) -> np.ndarray:
    """Indices splitting n frames into 4 overlapping bins, as davis2017 `db_statistics` does.

    Kept as int64: the official code casts them to uint8, which wraps (and picks wrong bins) once a
    sequence has more than 256 scored frames.
    """
    return (np.round(np.linspace(1, n_frames, 5) + 1e-10) - 1).astype(np.int64)


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame values: recall = share > 0.5, decay = first - last bin mean."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.nanmean(values > RECALL_TH))
        ids = decay_bin_edges(values.size)
        first = values[ids[0] : ids[1] + 1]
        last = values[ids[3] : ids[4] + 1]
        decay = float(np.nanmean(first) - np.nanmean(last))
    return mean, recall, decay
