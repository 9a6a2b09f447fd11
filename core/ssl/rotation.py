"""RotNet (Gidaris et al. 2018): learn features by predicting which of 0/90/180/270 degrees an
image was rotated by. Every image of the batch is shown at all four rotations."""
from __future__ import annotations

import torch
from torch import nn

from core.losses.ssl import rotation_loss
from core.ssl.augment import random_resized_crop, rotate_all
from core.ssl.method import Method, Normalise


class Rotation(Method):
    name = "rotation"
    default_lr = 1e-3

    def make_head(self, dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True), nn.Linear(dim, 4))

    def loss(self, backbone: nn.Module, head: nn.Module, x: torch.Tensor, idx: torch.Tensor,
             gen: torch.Generator, normalise: Normalise) -> torch.Tensor:
        # mild crops only: strong distortions would make the orientation itself ambiguous
        x = random_resized_crop(x, scale=(0.6, 1.0), generator=gen)
        xr, targets = rotate_all(x)
        return rotation_loss(head(backbone(normalise(xr))), targets)
