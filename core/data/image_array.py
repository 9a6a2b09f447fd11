"""A whole dataset as one uint8 pixel array (for clusterers that train on images, e.g. DAC)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from core.data.base import ImageDataset
from core.errors import ParameterError


def images_as_array(dataset: ImageDataset, size: int) -> np.ndarray:
    """uint8 (N, size, size) for grey array datasets, else (N, size, size, 3); row-aligned with ids.

    Array datasets at their native size are returned as they are (no copy); everything else is
    resized (bilinear, square) image by image through the dataset's safe loader.
    """
    if size < 1:
        raise ParameterError(f"image size must be at least 1 pixel, got {size}")
    native = dataset.native_array()
    if native is not None:
        if native.shape[1:3] == (size, size):
            return native
        out = np.empty((len(native), size, size, *native.shape[3:]), np.uint8)
        for i, img in enumerate(native):
            out[i] = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))
        return out
    out = np.empty((len(dataset), size, size, 3), np.uint8)
    for i in range(len(dataset)):
        out[i] = np.asarray(dataset.load(i).resize((size, size), Image.Resampling.BILINEAR))
    return out
