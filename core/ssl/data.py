"""Images for training: loaded once into a uint8 tensor, batches turned into model input.

Preprocessing is the extraction's own (:mod:`core.features.preprocess`): shorter side to S,
centre crop, so a trained checkpoint sees at extraction time what it saw in training.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.data.base import ImageDataset
from core.features.preprocess import BatchMapper, to_model_input

_CHUNK = 1024


def load_images(dataset: ImageDataset, size: int) -> torch.Tensor:
    """uint8 (N, C, S, S) on the CPU; C = 1 for grey array datasets, else 3."""
    native = dataset.native_array()
    mapper = BatchMapper(dataset, size, native)
    parts = []
    for start in range(0, len(dataset), _CHUNK):
        b = mapper[list(range(start, min(start + _CHUNK, len(dataset))))]   # uint8 (B, H, W, C)
        if b.shape[1:3] != (size, size):   # arrays: resize like extraction does, back to uint8
            f = to_model_input(b, size, (0.0,) * 3, (1 / 255,) * 3, keep_gray=True)
            b = f.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        parts.append(b.permute(0, 3, 1, 2).contiguous())
    return torch.cat(parts)


def to_unit(xb: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, S, S) -> float (B, 3, S, S) in [0, 1] (grey repeated to 3 channels)."""
    x = xb.float().div_(255.0)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """float (B, 3, S, S) in [0, 1] -> (x - mean) / std per channel."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], *,
          device: torch.device, batch_size: int = 512) -> np.ndarray:
    """float32 (N, D) backbone outputs (eval mode, no augmentation) of uint8 (N, C, S, S) images.

    Uses :func:`to_model_input` exactly as extraction does, so for images kept at their native
    size the result equals ``extract_features(..., backbone="checkpoint")`` before L2-normalising.
    """
    was_training = model.training
    model.eval()
    out = []
    size = images.shape[-1]
    for start in range(0, len(images), batch_size):
        b = images[start: start + batch_size].to(device).permute(0, 2, 3, 1)
        out.append(model(to_model_input(b, size, mean, std)).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()
