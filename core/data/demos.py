"""Built-in demo datasets that ship offline: digits, Fashion-MNIST (Debian package), LFW subset."""
from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.arrays import ArrayDataset, make_array_dataset
from core.errors import DataError
from core.registry import Registry

DATA_ROOT_ENV = "CLUSTERLENS_DATA_ROOT"
DEFAULT_DATA_ROOT = Path("~/.cache/clusterlens/torchvision")
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_MAGIC = {1: 2049, 3: 2051}   # ndim -> magic number for uint8 IDX files


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """torchvision-style root: argument, else $CLUSTERLENS_DATA_ROOT, else ~/.cache/clusterlens/torchvision."""
    return Path(explicit or os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT).expanduser()


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """A (gzipped) uint8 IDX file: images have a 16-byte header, labels an 8-byte one."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}; reinstall the files") from None
    header = 4 + 4 * ndim
    magic, *dims = np.frombuffer(raw[:header], dtype=">i4").tolist() if len(raw) >= header else (0,)
    if magic != _IDX_MAGIC[ndim] or len(raw) != header + int(np.prod(dims)):
        raise DataError(f"{path} is not a valid IDX file (damaged or truncated); reinstall the files")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _fashion_dirs(root: str | os.PathLike | None) -> list[Path]:
    dirs = []
    if root is not None:
        dirs += [Path(root).expanduser() / "FashionMNIST" / "raw", Path(root).expanduser()]
    if os.environ.get(DATA_ROOT_ENV):
        dirs.append(data_root() / "FashionMNIST" / "raw")
    return dirs + [FASHION_DEBIAN_DIR, DEFAULT_DATA_ROOT.expanduser() / "FashionMNIST" / "raw"]


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def find_fashion(splits: tuple[str, ...], root: str | os.PathLike | None = None) -> dict[str, tuple[Path, Path]]:
    """Paths of (images, labels) per split from the first folder holding them all; DataError if none."""
    for folder in _fashion_dirs(root):
        found = {s: tuple(_find_file(folder, stem) for stem in _FASHION_FILES[s]) for s in splits}
        if all(p is not None for pair in found.values() for p in pair):
            return found  # type: ignore[return-value]
    where = root if root is not None else FASHION_DEBIAN_DIR
    raise DataError(
        f"Fashion-MNIST files not found in {where}: `apt-get install dataset-fashion-mnist` "
        f"or pass a torchvision root (set {DATA_ROOT_ENV}) holding FashionMNIST/raw/"
    )


def load_fashion(splits: tuple[str, ...], name: str, root: str | os.PathLike | None = None) -> ArrayDataset:
    files = find_fashion(splits, root)
    images, labels = [], []
    for s in splits:
        img, lab = read_idx(files[s][0], 3), read_idx(files[s][1], 1)
        if len(img) != len(lab):
            raise DataError(f"{files[s][0]} has {len(img)} images but {files[s][1]} has {len(lab)} labels")
        images.append(img)
        labels.append(lab)
    return make_array_dataset(name, np.concatenate(images), np.concatenate(labels), list(FASHION_CLASSES),
                              [(s, len(a)) for s, a in zip(splits, images, strict=True)])


def load_digits_demo() -> ArrayDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)   # 0..16 -> 0..255
    return make_array_dataset("digits", images, d.target, [str(i) for i in range(10)], [("all", len(images))])


def load_lfw_demo() -> ArrayDataset:
    from skimage.data import lfw_subset

    x = lfw_subset()   # 200 × 25 × 25 float in [0, 1]; faces first, then non-faces
    images = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    labels = np.repeat([0, 1], [100, 100])
    return make_array_dataset("lfw", images, labels, ["face", "non-face"], [("all", len(images))])


def _can_import(module: str) -> tuple[bool, str]:
    try:
        __import__(module)
    except ImportError as e:
        return False, f"{module} is not installed ({e}); `pip install {module.split('.')[0]}`"
    return True, ""


def _fashion_available(splits: tuple[str, ...]) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        try:
            find_fashion(splits)
        except DataError as e:
            return False, str(e)
        return True, ""
    return check


@dataclass(frozen=True)
class Demo:
    name: str
    description: str
    size: int
    load: Callable[[], ArrayDataset]
    available: Callable[[], tuple[bool, str]]   # (True, "") or (False, why not and what to do)


DEMOS: Registry[Demo] = Registry("demo dataset")
for _demo in (
    Demo("digits", "scikit-learn handwritten digits, 8×8 grey, 10 classes", 1797,
         load_digits_demo, lambda: _can_import("sklearn.datasets")),
    Demo("fashion-mnist", "Fashion-MNIST test split, 28×28 grey, 10 classes", 10_000,
         lambda: load_fashion(("test",), "fashion-mnist"), _fashion_available(("test",))),
    Demo("fashion-mnist-train", "Fashion-MNIST train split, 28×28 grey, 10 classes", 60_000,
         lambda: load_fashion(("train",), "fashion-mnist-train"), _fashion_available(("train",))),
    Demo("fashion-mnist-all", "Fashion-MNIST train + test, 28×28 grey, 10 classes", 70_000,
         lambda: load_fashion(("train", "test"), "fashion-mnist-all"), _fashion_available(("train", "test"))),
    Demo("lfw", "scikit-image LFW subset: 100 faces + 100 non-faces, 25×25 grey", 200,
         load_lfw_demo, lambda: _can_import("skimage.data")),
):
    DEMOS.add(_demo.name, _demo)


def open_demo(name: str) -> ArrayDataset:
    """A demo by name (UnknownNameError lists them); DataError says how to make a missing one available."""
    demo = DEMOS.get(name)
    ok, why = demo.available()
    if not ok:
        raise DataError(f"demo {name!r} is not available: {why}")
    return demo.load()
