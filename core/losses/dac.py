"""Deep Adaptive Clustering losses (Chang et al., ICCV 2017), as pure functions.

A network maps each image to a *label feature*: a softmax over k clusters, L2-normalised. The dot
product of two label features is their similarity in [0, 1]. Pairs more similar than an upper
threshold ``u`` are taken as "same cluster", pairs less similar than a lower threshold ``l`` as
"different cluster", and the network is trained with binary cross-entropy on those pairs only.
``u`` falls and ``l`` rises during training, so more and more pairs take part until they meet.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pairwise_similarity", "select_pairs", "dac_loss", "balance_loss", "threshold_schedule"]

_EPS = 1e-7


def pairwise_similarity(f: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity of label features.

    Args:
        f: (B, k) non-negative label features (softmax outputs; L2-normalised here, which is a
           no-op for features that already are).
        g: optional (B2, k) second set (e.g. another augmented view); defaults to ``f``.
    Returns:
        (B, B2) float32 matrix of dot products, in [0, 1] for non-negative inputs.
    """
    f = F.normalize(f.float(), dim=1)
    g = f if g is None else F.normalize(g.float(), dim=1)
    return f @ g.T


def select_pairs(sim: torch.Tensor, upper: float, lower: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick confident pairs: similar if ``sim > upper``, dissimilar if ``sim < lower``.

    The diagonal (a sample with itself) is never selected. If the thresholds have crossed
    (``upper <= lower``) every pair is selected, split at their midpoint.

    Args:
        sim: (B, B) similarities (no gradient needed).
        upper, lower: thresholds in [0, 1].
    Returns:
        (pos_mask, neg_mask): two (B, B) bool tensors, disjoint.
    """
    sim = sim.detach()
    off_diag = ~torch.eye(sim.shape[0], sim.shape[1], dtype=torch.bool, device=sim.device)
    if upper <= lower:
        mid = 0.5 * (upper + lower)
        pos = sim >= mid
        return pos & off_diag, ~pos & off_diag
    return (sim > upper) & off_diag, (sim < lower) & off_diag


def dac_loss(sim: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on the selected pairs only.

    ``-log(sim)`` for similar pairs, ``-log(1 - sim)`` for dissimilar ones, averaged over the
    selected pairs. Unselected pairs contribute nothing (and no gradient).

    Args:
        sim: (B, B2) similarities in [0, 1] (with gradient).
        pos_mask, neg_mask: (B, B2) bool, disjoint.
    Returns:
        () scalar; 0 (still attached to the graph) when nothing is selected.
    """
    s = sim.float().clamp(_EPS, 1.0 - _EPS)
    n = pos_mask.sum() + neg_mask.sum()
    if int(n) == 0:
        return sim.sum() * 0.0
    total = -(torch.log(s) * pos_mask).sum() - (torch.log1p(-s) * neg_mask).sum()
    return total / n


def balance_loss(p: torch.Tensor) -> torch.Tensor:
    """KL divergence of the batch's mean cluster distribution from uniform.

    An optional regulariser against every sample sliding into one cluster early in training.

    Args:
        p: (B, k) softmax outputs.
    Returns:
        () scalar >= 0; 0 when clusters are used equally on average.
    """
    mean = p.float().mean(0).clamp_min(_EPS)
    k = p.shape[1]
    return (mean * torch.log(mean * k)).sum()


def threshold_schedule(
    epoch: int, n_epochs: int, u_start: float, u_end: float, l_start: float, l_end: float
) -> tuple[float, float]:
    """Thresholds (upper, lower) for a 0-based ``epoch`` out of ``n_epochs``.

    Linear from the start values (epoch 0) to the end values (last epoch): ``upper`` falls,
    ``lower`` rises; with ``u_end <= l_end`` they have met by the last epoch and every pair
    counts. A single-epoch run uses the end values.
    """
    t = 1.0 if n_epochs <= 1 else min(max(epoch, 0), n_epochs - 1) / (n_epochs - 1)
    return u_start + (u_end - u_start) * t, l_start + (l_end - l_start) * t
