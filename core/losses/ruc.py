"""RUC losses and target builders: pure, typed functions (B = batch, k = clusters).

Label smoothing for clean samples, MixMatch pieces (sharpen, label guessing, mixup, the L2
consistency loss) for unclean ones, and co-refinement of targets with the other network's
confidence. Nothing here holds state or draws random numbers: callers pass ``lam`` / ``perm``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def smooth_targets(targets: torch.Tensor, n_classes: int, smoothing: float) -> torch.Tensor:
    """(B,) int labels or (B, k) probabilities -> (B, k) ``(1 - s) * t + s / k``."""
    if targets.dim() == 1:
        targets = F.one_hot(targets.long(), n_classes).float()
    return targets * (1.0 - smoothing) + smoothing / n_classes


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_j t_j log softmax(logits)_j``; logits, targets (B, k)."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


def smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy for clean samples. logits (B, k); targets (B,) int or (B, k).

    Smoothing keeps the network from becoming over-confident in labels that may still be wrong.
    """
    return soft_cross_entropy(logits, smooth_targets(targets, logits.shape[1], smoothing))


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, k) -> (B, k): ``p^(1/T) / sum_j p_j^(1/T)``; T < 1 lowers the entropy."""
    p = probs.clamp_min(1e-12) ** (1.0 / temperature)
    return p / p.sum(1, keepdim=True)


def guess_labels(view_probs: Sequence[torch.Tensor], temperature: float) -> torch.Tensor:
    """MixMatch label guess: mean of the softmax outputs over augmented views (and networks),
    then sharpened. Each element (B, k); returns (B, k) without gradient."""
    with torch.no_grad():
        return sharpen(torch.stack(list(view_probs)).mean(0), temperature)


def mix(
    x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup with a given partner order: ``lam * a + (1 - lam) * a[perm]`` for inputs x (B, ...)
    and targets y (B, k). MixMatch uses ``lam >= 0.5`` so each mixed sample stays closer to
    its own input (and keeps its clean / unclean role); see :func:`mixmatch_lambda`."""
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


def mixmatch_lambda(beta_draw: float) -> float:
    """``max(l, 1 - l)`` of a Beta(alpha, alpha) draw."""
    return max(beta_draw, 1.0 - beta_draw)


def consistency_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MixMatch's unlabelled loss: mean squared error (over batch and classes) between
    softmax(logits) and the guessed targets, both (B, k). Bounded, so wrong guesses hurt less
    than with cross-entropy."""
    return ((F.softmax(logits, dim=1) - targets) ** 2).mean()


def co_refine(
    labels: torch.Tensor, own_probs: torch.Tensor, other_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Refined targets for clean samples, trusting the label as much as the *other* network does.

    ``w = other_probs[i, labels[i]]``; target = sharpen(w * onehot(label) + (1 - w) * own_probs).
    labels (B,) int; own_probs, other_probs (B, k); returns (B, k) without gradient. Using the
    peer's confidence (not one's own) keeps a network from confirming its own mistakes.
    """
    with torch.no_grad():
        onehot = F.one_hot(labels.long(), own_probs.shape[1]).float()
        w = other_probs.gather(1, labels.long()[:, None])
        return sharpen(w * onehot + (1 - w) * own_probs, temperature)
