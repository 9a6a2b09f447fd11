"""The dataset interface every source (folder, zip, demo, torchvision) provides.

A dataset is an ordered list of stable sample ids (strings: the path relative to the root for
files, ``split/index`` for array datasets) plus a way to load each image as RGB PIL. Ground truth
labels are optional (``-1`` = unknown) and are only ever used to score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not used, and why (shown in the CLI and stored in the workspace)."""

    id: str
    reason: str


@dataclass
class ImageDataset:
    """Base class. Subclasses fill the fields and implement :meth:`load`."""

    name: str
    ids: list[str]
    labels: np.ndarray | None = None          # (N,) int64, -1 where unknown; scoring only
    class_names: list[str] | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    fingerprint: str = ""                      # content hash of the manifest
    root: str | None = None                    # folder holding the files, if file-backed
    duplicates: list[list[str]] = field(default_factory=list)   # groups of ids with identical content

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> Image.Image:
        """Image ``i`` as an RGB PIL image (EXIF-transposed, safe-decoded)."""
        raise NotImplementedError

    def path(self, i: int) -> str | None:
        """Absolute file path of image ``i``, or None for array-backed datasets."""
        return None

    def native_array(self) -> np.ndarray | None:
        """Array datasets: all images as uint8 (N, H, W) or (N, H, W, 3) without PIL; else None."""
        return None

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and bool((self.labels >= 0).any())
