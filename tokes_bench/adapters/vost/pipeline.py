"""Propagate every sequence of a split and write the predicted indexed PNGs (the `eval vost` work)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from tokes_bench.adapters.vost.layout import (
    Layout,
    annotation_paths,
    check_same_size,
    frame_paths,
    read_mask,
    read_sequences,
)
from tokes_bench.adapters.vost.palette import read_palette, voc_palette, write_indexed_png
from tokes_bench.adapters.vost.propagation import FeatureExtractor, PropagationConfig, propagate_video


@dataclass
class SequenceInput:
    """Validated inputs of one sequence: frames to propagate through, its first mask and palette."""

    name: str
    frames: list[Path]
    first_mask: np.ndarray
    first_mask_path: Path
    palette: np.ndarray


def prepare_sequence(layout: Layout, seq: str, frames: str = "auto") -> SequenceInput:
    """Check that the first annotation is the first frame, every annotation has a frame, sizes agree."""
    paths = frame_paths(layout, seq, frames)
    ann = annotation_paths(layout, seq)
    if ann[0].stem != paths[0].stem:
        raise FileNotFoundError(
            f"{ann[0]}: the first annotation must be of the first frame, {paths[0]} (sequence {seq!r})"
        )
    stems = {p.stem for p in paths}
    lost = [a for a in ann if a.stem not in stems]
    if lost:
        raise FileNotFoundError(
            f"frame {paths[0].parent / (lost[0].stem + '.jpg')} is missing: annotation {lost[0]} has no "
            f"frame to propagate to ({len(lost)} such annotation(s) in {seq!r})"
        )
    first = read_mask(ann[0])
    probe = cv2.imread(str(paths[0]), cv2.IMREAD_COLOR)
    if probe is None:
        raise ValueError(f"{paths[0]}: not a readable image")
    check_same_size(probe.shape, first.shape, paths[0], ann[0])
    palette = read_palette(ann[0])
    return SequenceInput(seq, paths, first, ann[0], voc_palette() if palette is None else palette)


def propagate_split(
    layout: Layout,
    split: str,
    extractor: FeatureExtractor,
    cfg: PropagationConfig,
    out_dir: str | Path,
    frames: str = "auto",
    device: torch.device | str = "cpu",
    progress: Callable[[str], None] | None = print,
) -> int:
    """Write out_dir/<seq>/<frame>.png for every frame of every sequence; returns the number of frames."""
    out_dir = Path(out_dir)
    seqs = read_sequences(layout, split)
    inputs = [prepare_sequence(layout, s, frames) for s in seqs]  # fail on bad input before any work
    total = sum(len(x.frames) for x in inputs)
    done = 0
    t0 = time.perf_counter()
    for i, x in enumerate(inputs):

        def write(idx: int, ids: np.ndarray, x: SequenceInput = x) -> None:
            write_indexed_png(out_dir / x.name / f"{x.frames[idx].stem}.png", ids, x.palette)

        propagate_video(x.frames, x.first_mask, extractor, cfg, write, device, x.first_mask_path)
        done += len(x.frames)
        if progress is not None:
            el = time.perf_counter() - t0
            progress(
                f"[{i + 1}/{len(inputs)}] {x.name}: {len(x.frames)} frames; {done / el:.1f} frames/s, "
                f"ETA {el / done * (total - done):.0f} s"
            )
    return done
