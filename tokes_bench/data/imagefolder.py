"""ImageFolder reading (ImageNet's layout: `root/<split>/<class>/<image>`) with clear errors.

Undecodable images either stop the run naming the file (`on_corrupt='fail'`) or are skipped and
counted (`on_corrupt='skip'`), so a long pretraining run is not lost to one bad JPEG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
logger = logging.getLogger(__name__)


class CorruptImageError(ValueError):
    """An image file that cannot be decoded; the message names it."""


def scan_imagefolder(root: str | Path, split: str | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (sorted folder names) and (path, label) samples of `root[/split]`.

    Raises FileNotFoundError for a missing split folder and ValueError for a split with no class
    folders or a class folder with no images, each naming the folder.
    """
    base = Path(root) / split if split else Path(root)
    if not base.is_dir():
        raise FileNotFoundError(
            f"image folder {base} does not exist (expected <root>/{split or ''}/<class>/<image>)"
        )
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"image folder {base} has no class sub-folders")
    samples: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        files = sorted(str(p) for p in (base / name).rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise ValueError(f"class folder {base / name} has no images ({', '.join(IMG_EXTENSIONS)})")
        samples.extend((f, label) for f in files)
    return classes, samples


def load_rgb(path: str) -> Image.Image:
    """Decode an image fully as RGB; CorruptImageError names the file when it cannot be read."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CorruptImageError(f"cannot decode image {path}: {e}") from e


class ImageFolderDataset(Dataset):
    """(image, label) pairs from an ImageFolder split, with a policy for undecodable files."""

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        transform: Callable | None = None,
        on_corrupt: str = "fail",
    ) -> None:
        if on_corrupt not in ("fail", "skip"):
            raise ValueError(f"on_corrupt must be 'fail' or 'skip', got {on_corrupt!r}")
        self.root = Path(root)
        self.split = split
        self.classes, self.samples = scan_imagefolder(root, split)
        self.transform = transform
        self.on_corrupt = on_corrupt
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        for step in range(len(self.samples)):
            path, label = self.samples[(index + step) % len(self.samples)]
            try:
                img = load_rgb(path)
            except CorruptImageError:
                if self.on_corrupt == "fail":
                    raise
                self.skipped.append(path)
                logger.warning("skipping undecodable image %s (%d skipped so far)", path, len(self.skipped))
                continue
            return (self.transform(img) if self.transform else img), label
        raise CorruptImageError(f"no decodable image in {self.root / (self.split or '')}")
