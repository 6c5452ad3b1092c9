"""J, F, recall, decay and J_last against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokes_bench.adapters.vost.metrics import (
    bound_radius,
    boundary_f,
    db_statistics,
    decay_bin_edges,
    frame_boundary_f,
    frame_jaccard,
    last_quarter_start,
)

HAND = np.array([1.0, 0.9, 0.6, 0.4, 0.2, 0.1, 0.0, 0.5])


def test_jaccard_hand_cases():
    gt = np.zeros((4, 4), np.uint8)
    gt[0, :] = 1  # 4 pixels
    pred = np.zeros((4, 4), np.uint8)
    pred[0, :2] = 1
    pred[1, :2] = 1  # 2 overlap, union 6
    j = frame_jaccard(gt, pred, n_objects=3)
    # object 1: 2/6; object 2 and 3: both empty -> 1
    assert j.tolist() == pytest.approx([1 / 3, 1.0, 1.0])
    assert frame_jaccard(gt, np.zeros_like(gt), 1).tolist() == [0.0]


def test_jaccard_void_is_background_unless_ignored():
    gt = np.array([[1, 1, 255, 0]], np.uint8)
    pred = np.array([[1, 1, 1, 0]], np.uint8)
    assert frame_jaccard(gt, pred, 1)[0] == pytest.approx(2 / 3)  # official: void -> background
    assert frame_jaccard(gt, pred, 1, ignore_void=True)[0] == 1.0  # void pixel excluded
    # predicted ids above the object count match no object
    assert frame_jaccard(gt, np.array([[2, 2, 2, 0]], np.uint8), 1)[0] == 0.0


def test_recall_and_decay_on_hand_sequence():
    # bins: round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7] -> first v[0:3], last v[5:8]
    assert decay_bin_edges(8).tolist() == [0, 2, 4, 5, 7]
    mean, recall, decay = db_statistics(HAND)
    assert mean == pytest.approx(3.7 / 8)
    assert recall == pytest.approx(3 / 8)  # 1, .9, .6 exceed 0.5; 0.5 itself does not
    assert decay == pytest.approx((1 + 0.9 + 0.6) / 3 - (0.1 + 0.0 + 0.5) / 3)


def test_j_last_starts_at_floor_three_quarters():
    assert [last_quarter_start(n) for n in (1, 4, 7, 8, 10, 13)] == [0, 3, 5, 6, 7, 9]
    last = HAND[last_quarter_start(HAND.size) :]
    assert last.tolist() == [0.0, 0.5]
    mean, recall, decay = db_statistics(last)
    assert (mean, recall) == (pytest.approx(0.25), 0.0)
    assert decay == pytest.approx(-0.5)  # bins [0, 0, 1, 1, 1]: v[0:1] - v[1:2]


def test_decay_bins_stay_right_past_256_frames():
    # The official uint8 cast wraps the last edge (299 -> 43); we keep int64 edges.
    edges = decay_bin_edges(300)
    assert edges.tolist() == [0, 75, 150, 224, 299]
    assert edges.astype(np.uint8).tolist() == [0, 75, 150, 224, 43]
    v = np.linspace(1.0, 0.0, 300)
    _, _, decay = db_statistics(v)
    assert decay == pytest.approx(v[0:76].mean() - v[224:300].mean())


def test_empty_sequence_gives_nan():
    assert all(math.isnan(x) for x in db_statistics(np.array([])))


def _stripe(rows: tuple[int, int], size: int = 40) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[rows[0] : rows[1] + 1, :] = True
    return m


def test_boundary_f_known_matches():
    # 40x40 -> tolerance ceil(0.008 * 56.6) = 1 px. GT stripe rows 10..19 has boundary rows 9 and 19.
    assert bound_radius((40, 40)) == 1
    gt = _stripe((10, 19))
    assert boundary_f(gt, gt) == 1.0
    assert boundary_f(gt, _stripe((11, 20))) == 1.0  # boundaries 10, 20: each 1 px from 9, 19
    # pred rows 11..24: boundary rows 10 (matches 9) and 24 (no match): P = R = 1/2
    assert boundary_f(gt, _stripe((11, 24))) == pytest.approx(0.5)
    assert boundary_f(gt, _stripe((13, 22))) == 0.0  # every boundary 3 px away
    empty = np.zeros_like(gt)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(gt, empty) == 0.0
    ids = np.where(gt, 1, 0).astype(np.uint8)
    pred = np.where(_stripe((11, 24)), 1, 0).astype(np.uint8)
    assert frame_boundary_f(ids, pred, 2).tolist() == pytest.approx([0.5, 1.0])
