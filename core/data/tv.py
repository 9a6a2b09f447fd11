"""torchvision's MNIST / CIFAR-10 / STL-10 (``torchvision:NAME[:SPLIT]``), from files on disk or a download."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data.arrays import ArrayDataset, make_array_dataset
from core.data.demos import data_root
from core.errors import DataError, UnknownNameError

PREFIX = "torchvision:"


@dataclass(frozen=True)
class TvSpec:
    cls_name: str                       # class in torchvision.datasets
    splits: tuple[str, ...]             # first = default
    size: dict[str, int]
    marker: dict[str, str]              # split -> a file under root that exists once downloaded
    description: str


TV_DATASETS = {
    "mnist": TvSpec("MNIST", ("test", "train"), {"test": 10_000, "train": 60_000},
                    {"test": "MNIST/raw/t10k-images-idx3-ubyte", "train": "MNIST/raw/train-images-idx3-ubyte"},
                    "MNIST handwritten digits, 28×28 grey, 10 classes"),
    "cifar10": TvSpec("CIFAR10", ("test", "train"), {"test": 10_000, "train": 50_000},
                      {"test": "cifar-10-batches-py/test_batch", "train": "cifar-10-batches-py/data_batch_5"},
                      "CIFAR-10, 32×32 colour, 10 classes"),
    "stl10": TvSpec("STL10", ("test", "train"), {"test": 8_000, "train": 5_000},
                    {"test": "stl10_binary/test_X.bin", "train": "stl10_binary/train_X.bin"},
                    "STL-10 labelled splits, 96×96 colour, 10 classes"),
}


def parse(source: str) -> tuple[str, str]:
    """'torchvision:mnist:train' -> ('mnist', 'train'); the split defaults to the first listed."""
    _, _, rest = source.partition(PREFIX)
    name, _, split = rest.lower().partition(":")
    if name not in TV_DATASETS:
        raise UnknownNameError(
            f"unknown torchvision dataset {name!r}; choose one of: "
            + ", ".join(PREFIX + n for n in TV_DATASETS) + " (optionally with :train or :test)"
        )
    spec = TV_DATASETS[name]
    split = split or spec.splits[0]
    if split not in spec.splits:
        raise UnknownNameError(f"unknown split {split!r} for {PREFIX}{name}; choose one of: {', '.join(spec.splits)}")
    return name, split


def is_present(name: str, split: str, root: str | os.PathLike | None = None) -> bool:
    return (data_root(root) / TV_DATASETS[name].marker[split]).is_file()


def _construct(cls: Any, root: Path, split: str, download: bool) -> Any:
    if cls.__name__ == "STL10":
        return cls(str(root), split=split, download=download)
    return cls(str(root), train=(split == "train"), download=download)


def _instantiate(name: str, split: str, root: Path) -> Any:
    import torchvision.datasets as tvd

    cls = getattr(tvd, TV_DATASETS[name].cls_name)
    try:
        return _construct(cls, root, split, download=False)   # files already there: no network
    except (RuntimeError, OSError):
        pass
    try:
        return _construct(cls, root, split, download=True)
    except Exception as e:  # urllib, ssl, http and checksum errors all mean "no files"
        detail = " ".join(str(e).split())[:300]   # torchvision's messages span lines, one per mirror
        raise DataError(
            f"could not download torchvision {name} ({split}) into {root}: {type(e).__name__}: {detail}. "
            f"Put the dataset files under {root} (as torchvision lays them out), set CLUSTERLENS_DATA_ROOT "
            "to a folder that has them, or use the offline demo 'fashion-mnist' (`apt-get install "
            "dataset-fashion-mnist`)"
        ) from None


def _to_arrays(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    if data.ndim == 4 and data.shape[1] == 3:   # STL-10 stores (N, 3, H, W)
        data = data.transpose(0, 2, 3, 1)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    return np.ascontiguousarray(data, dtype=np.uint8), labels.astype(np.int64)


def open_torchvision(source: str, *, root: str | os.PathLike | None = None) -> ArrayDataset:
    name, split = parse(source)
    base = data_root(root)
    ds = _instantiate(name, split, base)
    images, labels = _to_arrays(ds)
    classes = list(getattr(ds, "classes", []) or []) or None
    return make_array_dataset(f"{PREFIX}{name}:{split}", images, labels, classes, [(split, len(images))])
