"""Networks for DAC: the paper's small all-convolutional ConvNet and an MLP head for features.

Both end in a batch-normalised layer before the softmax. Why: batch norm forces every output
unit to vary across the batch, so the network cannot put every sample in one cluster — this is
what keeps DAC's self-training from collapsing at the start, when all pairs look alike.
Because those logits have unit scale, ``temperature`` (softmax(logits / T)) sets how sharp the
label features can be: T = 1 is the paper's softmax; T < 1 makes them nearer one-hot.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["DACConvNet", "DACHead", "init_weights", "pools_for"]


def pools_for(size: int) -> int:
    """Extra 2x down-sampling steps so that the two regular pools end at <= 8 pixels."""
    extra = 0
    while size / 2 ** (2 + extra) > 8:
        extra += 1
    return extra


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DACConvNet(nn.Module):
    """conv64 x2 → pool → conv128 x2 → pool → 1x1 conv to k → global avg pool → FC k→k + BN + ReLU.

    Input (B, C, S, S) float in [0, 1] with C in {1, 3}, S from 8 to 96 (larger inputs get extra
    max-pools after the first convolution so the cost stays bounded). Output (B, k) softmax
    probabilities (float32, also under autocast).
    """

    def __init__(self, n_clusters: int, *, in_channels: int = 1, image_size: int = 32, width: int = 64,
                 temperature: float = 1.0):
        super().__init__()
        self.temperature = float(temperature)
        w1, w2 = width, 2 * width
        extra = pools_for(image_size)
        layers: list[nn.Module] = _conv(in_channels, w1)
        layers += [nn.MaxPool2d(2) for _ in range(extra)]
        layers += _conv(w1, w1) + [nn.MaxPool2d(2)]
        layers += _conv(w1, w2) + _conv(w2, w2) + [nn.MaxPool2d(2)]
        layers += [nn.Conv2d(w2, n_clusters, 1, bias=False), nn.BatchNorm2d(n_clusters), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(n_clusters, n_clusters)
        self.bn = nn.BatchNorm1d(n_clusters)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) → (B, k) pre-softmax scores."""
        h = self.pool(self.features(x)).flatten(1)
        return torch.relu(self.bn(self.fc(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x).float() / self.temperature, dim=1)


class DACHead(nn.Module):
    """Frozen-features variant: Linear → BN → ReLU → Linear → BN → softmax.

    Input (B, D) float features; output (B, k) softmax probabilities.
    """

    def __init__(self, in_dim: int, n_clusters: int, *, hidden: int = 256, temperature: float = 1.0):
        super().__init__()
        self.temperature = float(temperature)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, n_clusters), nn.BatchNorm1d(n_clusters),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x).float() / self.temperature, dim=1)


@torch.no_grad()
def init_weights(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-initialise conv/linear weights from ``generator`` (not torch's global RNG): one seed,
    one model. Kaiming-normal for ReLU layers, as in torch's own defaults for their fan-in."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            std = math.sqrt(2.0 / fan_in)
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_parameters()
    return model
