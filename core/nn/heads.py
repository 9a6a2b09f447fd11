"""MLP classifier heads on frozen feature vectors (RUC's features variant)."""
from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """(B, D) features -> (B, k) logits through ``depth`` hidden layers of ``hidden`` units.

    BatchNorm + ReLU; no dropout module, because feature-space augmentation (done by the
    caller with an explicit generator) already plays that role and keeps runs reproducible.
    """

    def __init__(self, in_dim: int, n_classes: int, *, hidden: int = 256, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            d = hidden
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(d, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, hidden) penultimate features."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))
