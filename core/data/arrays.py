"""Datasets held as one uint8 array in memory (demos, torchvision): ids are ``split/index``."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.data.base import ImageDataset


def array_fingerprint(name: str, images: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{name}\0{images.dtype}\0{images.shape}\0".encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()


@dataclass
class ArrayDataset(ImageDataset):
    """``images`` is uint8 (N, H, W) or (N, H, W, 3), row-aligned with ``ids``."""

    images: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), np.uint8), repr=False)

    def load(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i]).convert("RGB")

    def native_array(self) -> np.ndarray:
        return self.images


def make_array_dataset(name: str, images: np.ndarray, labels: np.ndarray | None, class_names: list[str] | None,
                       splits: list[tuple[str, int]]) -> ArrayDataset:
    """Build an :class:`ArrayDataset`; ``splits`` = [(split name, count), ...] in row order."""
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(f"images must be uint8 (N,H,W) or (N,H,W,3), got {images.dtype} {images.shape}")
    ids = [f"{split}/{i}" for split, n in splits for i in range(n)]
    if len(ids) != len(images):
        raise ValueError(f"splits cover {len(ids)} rows but there are {len(images)} images")
    return ArrayDataset(
        name=name,
        ids=ids,
        labels=None if labels is None else np.asarray(labels, dtype=np.int64),
        class_names=class_names,
        fingerprint=array_fingerprint(name, images),
        images=images,
    )
