"""Tiny hand-made datasets for the feature tests (no dependency on core.data's sources)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.base import ImageDataset


class ArrayDataset(ImageDataset):
    """uint8 (N, H, W) or (N, H, W, 3) in memory: takes extraction's no-PIL fast path."""

    def __init__(self, arr: np.ndarray, name: str = "arr") -> None:
        super().__init__(name=name, ids=[f"test/{i}" for i in range(len(arr))],
                         fingerprint=hashlib.sha256(arr.tobytes()).hexdigest())
        self.arr = arr

    def load(self, i: int) -> Image.Image:
        return Image.fromarray(self.arr[i]).convert("RGB")

    def native_array(self) -> np.ndarray:
        return self.arr


class PILDataset(ImageDataset):
    """A list of PIL images: takes the per-image PIL path (like folder datasets)."""

    def __init__(self, images: list[Image.Image], name: str = "pil", fingerprint: str = "fp-pil") -> None:
        super().__init__(name=name, ids=[f"img{i}.png" for i in range(len(images))], fingerprint=fingerprint)
        self.images = images

    def load(self, i: int) -> Image.Image:
        return self.images[i].convert("RGB")


@pytest.fixture
def gray_arrays() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (10, 16, 16), dtype=np.uint8)


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch: pytest.MonkeyPatch):
    """One torch thread: on a busy 2-core machine OpenMP barriers made 2 threads up to 30x slower.
    OMP_NUM_THREADS stops extract_features' set_cpu_threads() from raising it again."""
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
