"""Pretraining data: unlabeled ImageFolder images with MAE's augmentation, reproducibly seeded.

`SeededAugSampler` yields (index, seed) pairs whose seed depends only on (run seed, epoch, index),
and `PretrainImageFolder` draws each sample's crop/flip from that seed: augmentations do not
depend on worker count, process count or on whether the run was resumed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset
from torchvision import transforms as T

from tokes_bench.data.imagefolder import ImageFolderDataset


@DATA_SAMPLERS.register_module(name="SeededAugSampler")
class SeededAugSampler(DefaultSampler):
    """mmengine's DefaultSampler (same order, same rank split) yielding (index, augmentation seed)."""

    def __iter__(self):
        seed, epoch = int(self.seed), int(self.epoch)
        return ((int(i), (seed * 1_000_003 + epoch) * 1_000_033 + int(i)) for i in super().__iter__())


def mae_train_transform(img_size: int, crop_scale: tuple[float, float], hflip: bool) -> T.Compose:
    """MAE's pretraining augmentation: RandomResizedCrop (bicubic) + horizontal flip -> uint8 CHW."""
    steps = [T.RandomResizedCrop(img_size, scale=tuple(crop_scale), interpolation=T.InterpolationMode.BICUBIC)]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.PILToTensor())
    return T.Compose(steps)


@DATASETS.register_module(name="PretrainImageFolder")
class PretrainImageFolder(Dataset):
    """Images of `data_root/split/<class>/*` (labels ignored) as dict(inputs=uint8 (3, S, S) tensor).

    on_corrupt: 'fail' stops naming the file; 'skip' logs it, counts it and uses the next image.
    """

    def __init__(
        self,
        data_root: str | None,
        split: str | None = "train",
        img_size: int = 224,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        hflip: bool = True,
        on_corrupt: str = "fail",
    ) -> None:
        if data_root is None:
            raise ValueError("dataset data_root is not set: pass --cfg-options data_root=/path/to/imagenet")
        self.folder = ImageFolderDataset(
            Path(data_root), split, transform=mae_train_transform(img_size, crop_scale, hflip), on_corrupt=on_corrupt
        )

    @property
    def skipped(self) -> list[str]:
        """Undecodable files skipped so far in this process."""
        return self.folder.skipped

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        if isinstance(key, tuple):
            index, seed = key
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed % (2**63))
                img, _ = self.folder[index]
        else:
            img, _ = self.folder[key]
        return {"inputs": img}
