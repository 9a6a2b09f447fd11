"""Fashion-MNIST from the Debian package (gzip IDX files), scaled to [0, 1] float32."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/datasets/fashion-mnist")


def _read(name: str, offset: int) -> np.ndarray:
    with gzip.open(ROOT / name, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """split: 'train' (60k), 'test' (10k) or 'all' (70k). Returns (X float32 (N, 784), y int64)."""
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    xs = [_read(f"{p}-images-idx3-ubyte.gz", 16).reshape(-1, 784) for p in parts]
    ys = [_read(f"{p}-labels-idx1-ubyte.gz", 8).astype(np.int64) for p in parts]
    X = np.concatenate(xs).astype(np.float32)
    X /= 255.0
    return X, np.concatenate(ys)
