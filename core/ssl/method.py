"""What every training method provides to the loop in :mod:`core.ssl.train`.

A method owns its head (the part thrown away after training), its augmentation, its loss, and
how batches are drawn. The loop owns the backbone, the optimiser, checkpoints and stopping.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Normalise = Callable[[torch.Tensor], torch.Tensor]   # [0, 1] images -> model input


@dataclass(frozen=True)
class MethodConfig:
    temperature: float = 0.5      # SimCLR
    margin: float = 0.2           # metric learning
    n_clusters: int = 10          # metric learning: k of the pseudo-label k-means
    metric_loss: str = "triplet"  # metric learning: "triplet" | "contrastive"
    augment: str = "auto"         # SimCLR views: "auto" | "standard" | "gentle" | "mild" (see core.ssl.simclr)
    feature: str = "auto"         # SimCLR's saved output: "auto" | "backbone" | "projection"


@dataclass
class EpochContext:
    """What a method may look at when an epoch starts (metric learning re-clusters here)."""

    backbone: nn.Module
    images: torch.Tensor                  # uint8 (N, C, S, S), CPU
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    generator: torch.Generator


class Method:
    """Base class. ``loss`` gets ``x``: float (B, 3, S, S) in [0, 1] on the device, un-augmented."""

    name = ""
    default_lr = 1e-3
    needs_init = False     # True: refines an existing backbone (init_checkpoint required)

    def __init__(self, cfg: MethodConfig) -> None:
        self.cfg = cfg

    def make_head(self, dim: int) -> nn.Module:
        return nn.Identity()

    def exports_projection(self) -> bool:
        """True: the checkpoint keeps backbone + head, so its output is the head's projection."""
        return False

    def begin_epoch(self, ctx: EpochContext) -> dict[str, float]:
        """Runs before each epoch; returns extra values for the epoch's history record."""
        return {}

    def batches(self, n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
        """Index batches for one epoch: a shuffled pass, full batches only (stable BatchNorm)."""
        perm = torch.randperm(n, generator=gen)
        return list(perm[: n - n % batch_size].view(-1, batch_size))

    def loss(self, backbone: nn.Module, head: nn.Module, x: torch.Tensor, idx: torch.Tensor,
             gen: torch.Generator, normalise: Normalise) -> torch.Tensor:
        raise NotImplementedError
