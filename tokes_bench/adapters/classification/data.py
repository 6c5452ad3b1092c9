"""ImageFolder splits for classification (train/ and val/ with the same classes) and their transforms."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import transforms as T

from tokes_bench.data.imagefolder import CorruptImageError, ImageFolderDataset, load_rgb

SPLITS = ("train", "val")


def open_splits(
    data_dir: str | Path, train_transform, val_transform
) -> tuple[ImageFolderDataset, ImageFolderDataset]:
    """Train and val datasets of `data_dir`; errors name a missing split, empty class or class mismatch."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder {data_dir} does not exist (expected {data_dir}/train and /val)")
    train = ImageFolderDataset(data_dir, "train", transform=train_transform)
    val = ImageFolderDataset(data_dir, "val", transform=val_transform)
    if train.classes != val.classes:
        only_train = sorted(set(train.classes) - set(val.classes))
        only_val = sorted(set(val.classes) - set(train.classes))
        raise ValueError(
            f"{data_dir}: train/ and val/ must have the same class folders; "
            f"only in train: {only_train[:10]}, only in val: {only_val[:10]}"
        )
    return train, val


def eval_transform(img_size: int, crop_pct: float, interpolation: str, mean, std):
    """Resize the short side to img_size / crop_pct, center-crop img_size, normalise (MAE/DINO eval)."""
    from timm.data import create_transform

    return create_transform(
        input_size=img_size,
        is_training=False,
        crop_pct=crop_pct,
        interpolation=interpolation,
        mean=mean,
        std=std,
    )


def probe_aug_transform(img_size: int, scale, hflip: float, interpolation: str, mean, std):
    """MAE linear-probe train augmentation: RandomResizedCrop + horizontal flip, normalise."""
    from timm.data.transforms import str_to_interp_mode

    return T.Compose(
        [
            T.RandomResizedCrop(
                img_size, scale=tuple(scale), interpolation=str_to_interp_mode(interpolation)
            ),
            T.RandomHorizontalFlip(hflip),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


class CheckedItems(torch.utils.data.Dataset):
    """(image, label, error) items: an undecodable image yields its error text instead of failing in a worker.

    The loader's consumer raises the error in the main process, so the message is one clean line
    naming the file rather than a DataLoader worker traceback.
    """

    def __init__(self, dataset: ImageFolderDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        path, label = self.dataset.samples[index]
        try:
            img = load_rgb(path)
        except CorruptImageError as e:
            return None, label, str(e)
        return self.dataset.transform(img), label, ""


def collate_checked(items):
    """Stack images and labels, or return the first decode error of the batch as (None, None, message)."""
    for _, _, err in items:
        if err:
            return None, None, err
    return torch.stack([x for x, _, _ in items]), torch.tensor([y for _, y, _ in items]), ""


def raise_if_error(err: str) -> None:
    """Raise the decode error a `collate_checked` batch carries, if any."""
    if err:
        raise CorruptImageError(err)


def _posterize(img, bits_to_keep: int, **_):
    """timm's posterize with Pillow < 11 semantics: 0 bits kept gives a black image.

    timm's RandAugment 'inc1' maps magnitude 10 to 0 bits; Pillow >= 11 rejects bits outside
    1..8 and the MAE recipe ('rand-m9-mstd0.5-inc1') would crash on those draws.
    """
    if bits_to_keep >= 8:
        return img
    mask = ~(2 ** (8 - max(int(bits_to_keep), 0)) - 1)
    return img.point([i & mask for i in range(256)] * len(img.getbands()))


def fix_timm_posterize() -> None:
    """Point timm's posterize ops at `_posterize` (idempotent; same results where Pillow accepts the bits)."""
    from timm.data import auto_augment

    for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        auto_augment.NAME_TO_OP[name] = _posterize
