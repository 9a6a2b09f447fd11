"""Image classifiers for RUC's image variant: a small ConvNet for 8-96 px images and a
ResNet-18 adapted to small inputs for larger ones. Both: (B, C, H, W) -> (B, k) logits."""
from __future__ import annotations

import torch
from torch import nn

MIN_SIZE, SMALL_MAX_SIZE = 8, 96


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class SmallConvNet(nn.Module):
    """Three conv stages (width, 2w, 4w) with 2x2 pooling after the first two, global average
    pooling, linear classifier. Pooling twice keeps 8 px inputs at 2x2 before the global pool.
    1 or 3 input channels."""

    def __init__(self, in_channels: int, n_classes: int, *, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(in_channels, width), nn.MaxPool2d(2),
            _block(width, 2 * width), nn.MaxPool2d(2),
            _block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallInputResNet18(nn.Module):
    """torchvision ResNet-18 (random init) with a 3x3 stride-1 stem and no max-pool, the usual
    change for small images, so 32-128 px inputs are not shrunk to 1 px before the last stage."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None, num_classes=n_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.classifier = net.fc
        net.fc = nn.Identity()
        self.features = net

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def make_image_classifier(in_channels: int, size: int, n_classes: int, *, width: int = 32) -> nn.Module:
    """SmallConvNet up to 96 px, the small-input ResNet-18 above that."""
    if in_channels not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels, got {in_channels}")
    if size < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE} px, got {size}")
    if size <= SMALL_MAX_SIZE:
        return SmallConvNet(in_channels, n_classes, width=width)
    return SmallInputResNet18(in_channels, n_classes)
