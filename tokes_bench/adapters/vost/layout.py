"""Dataset and result folder layouts of VOST and DAVIS-2017, and validated reading of mask PNGs.

VOST:   JPEGImages/<seq>/*.jpg, JPEGImages_10fps/<seq>/*.jpg, Annotations/<seq>/*.png,
        ImageSets/<set>.txt
DAVIS:  JPEGImages/480p/<seq>/*.jpg, Annotations/480p/<seq>/*.png, ImageSets/2017/<set>.txt
Results (both): <results>/<seq>/<frame>.png, one indexed PNG per annotated frame.

Annotations are indexed PNGs: 0 background, 1..N objects, 255 ignore ("void").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

VOID = 255
PROTOCOLS = ("vost", "davis")


@dataclass(frozen=True)
class Layout:
    """Where one protocol keeps its frames, annotations and sequence lists under a dataset root."""

    root: Path
    protocol: str

    @property
    def annotations(self) -> Path:
        return self.root / "Annotations" / ("480p" if self.protocol == "davis" else "")

    @property
    def images(self) -> Path:
        return self.root / "JPEGImages" / ("480p" if self.protocol == "davis" else "")

    def imageset(self, split: str) -> Path:
        sets = self.root / "ImageSets"
        return (sets / "2017" if self.protocol == "davis" else sets) / f"{split}.txt"

    def frame_dir(self, seq: str, frames: str = "auto") -> Path:
        """Folder of the JPEGs to propagate through: VOST prefers JPEGImages_10fps (as its baselines do)."""
        if self.protocol == "vost" and frames in ("auto", "10fps"):
            tenfps = self.root / "JPEGImages_10fps" / seq
            if tenfps.is_dir() or frames == "10fps":
                return tenfps
        return self.images / seq


def make_layout(root: str | os.PathLike, protocol: str) -> Layout:
    """A Layout after checking that the protocol is known and the root exists."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r} is not one of {PROTOCOLS}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    return Layout(root, protocol)


def read_sequences(layout: Layout, split: str) -> list[str]:
    """Sequence names listed in the split file (blank lines skipped)."""
    path = layout.imageset(split)
    if not path.is_file():
        raise FileNotFoundError(f"sequence list {path} does not exist (expected for set {split!r})")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"sequence list {path} is empty")
    return names


def annotation_paths(layout: Layout, seq: str) -> list[Path]:
    """Sorted annotation PNGs of one sequence (the frames that are scored, as the official tools do)."""
    folder = layout.annotations / seq
    paths = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"no annotation PNGs in {folder} (sequence {seq!r})")
    return paths


def frame_paths(layout: Layout, seq: str, frames: str = "auto") -> list[Path]:
    """Sorted JPEG frames of one sequence."""
    folder = layout.frame_dir(seq, frames)
    paths = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"no JPEG frames in {folder} (sequence {seq!r})")
    return paths


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask PNG as a 2-D uint8 id map; RGB/RGBA or unreadable files are errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask {path} does not exist")
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode not in ("P", "L"):
                raise ValueError(
                    f"{path}: mask is a {mode} image; expected an indexed (P) or grayscale (L) PNG "
                    "holding object ids (0 background, 1..N objects, 255 ignore)"
                )
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{path}: not a readable PNG ({e})") from e
    return arr


def first_frame_objects(mask: np.ndarray) -> int:
    """Number of objects as the official tools count them: the largest id of the first annotation."""
    ids = mask[mask != VOID]
    return int(ids.max()) if ids.size else 0


def check_ids(mask: np.ndarray, n_objects: int, path: Path, what: str = "annotation") -> None:
    """Raise naming `path` when the mask holds an id that is not background, void or a first-frame object."""
    if int(mask.max(initial=0)) <= n_objects:
        return
    bad = np.unique(mask[(mask > n_objects) & (mask != VOID)])
    if bad.size:
        raise ValueError(
            f"{path}: {what} holds object id(s) {bad.tolist()} absent from the first-frame annotation "
            f"(objects are 1..{n_objects})"
        )


def check_same_size(a: tuple[int, ...], b: tuple[int, ...], path_a: Path, path_b: Path) -> None:
    """Raise naming both files when two images differ in height x width."""
    if tuple(a[:2]) != tuple(b[:2]):
        raise ValueError(f"{path_b}: size {b[1]}x{b[0]} (WxH) does not match {path_a} ({a[1]}x{a[0]})")
