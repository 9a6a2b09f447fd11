"""Self-supervised and pseudo-label metric-learning losses, as pure functions.

- :func:`nt_xent`: SimCLR's normalised-temperature cross entropy over two augmented views.
- :func:`rotation_loss`: RotNet's 4-way cross entropy (0/90/180/270 degrees).
- :func:`batch_hard_mining`, :func:`pairwise_contrastive`, :func:`triplet_hard`: metric learning
  on *pseudo*-labels (e.g. k-means clusters of the current features), never on ground truth.
  Each anchor is paired with its hardest positive (farthest same-label sample) and hardest
  negative (nearest other-label sample) in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent", "rotation_loss", "pairwise_distances", "batch_hard_mining", "pairwise_contrastive",
           "triplet_hard"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020).

    Args:
        z1: (B, D) projections of view 1 (any scale; L2-normalised here).
        z2: (B, D) projections of view 2; row i of z1 and z2 come from the same image.
        temperature: softmax temperature tau > 0.
    Returns:
        () scalar: the mean over all 2B anchors of
        ``-log(exp(s(i, j(i)) / tau) / sum_{k != i} exp(s(i, k) / tau))`` with s the cosine
        similarity and j(i) the other view of the same image.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must both be (B, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)               # (2B, D)
    sim = z @ z.T / temperature                                        # (2B, 2B)
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


def rotation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """RotNet loss.

    Args:
        logits: (N, 4) scores for rotations by 0, 90, 180, 270 degrees.
        targets: (N,) int64 in 0..3, the rotation actually applied.
    Returns:
        () mean cross entropy.
    """
    if logits.dim() != 2 or logits.shape[1] != 4:
        raise ValueError(f"logits must be (N, 4), got {tuple(logits.shape)}")
    return F.cross_entropy(logits.float(), targets)


def pairwise_distances(emb: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, N) Euclidean distances; exact zeros on the diagonal, gradient-safe at 0."""
    e = emb.float()
    sq = (e * e).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * e @ e.T).clamp_min(0.0)
    eye = torch.eye(len(e), dtype=torch.bool, device=e.device)
    d2 = d2.masked_fill(eye, 0.0)
    # sqrt has an infinite gradient at 0: take it of a value moved off 0, then put the zeros back
    zero = d2 <= 1e-12
    return torch.sqrt(d2 + zero.float() * 1e-12).masked_fill(zero, 0.0)


def batch_hard_mining(emb: torch.Tensor, pseudo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hardest positive and negative of every anchor in the batch (Hermans et al. 2017).

    Args:
        emb: (N, D) embeddings.
        pseudo: (N,) int64 pseudo-labels.
    Returns:
        pos: (N,) int64 index of the farthest other sample with the same label;
        neg: (N,) int64 index of the nearest sample with another label;
        valid: (N,) bool, anchors that have both a positive and a negative in the batch.
    """
    with torch.no_grad():
        d = pairwise_distances(emb)
        same = pseudo[:, None] == pseudo[None, :]
        eye = torch.eye(len(pseudo), dtype=torch.bool, device=emb.device)
        pos_mask, neg_mask = same & ~eye, ~same
        pos = d.masked_fill(~pos_mask, -1.0).argmax(1)
        neg = d.masked_fill(~neg_mask, float("inf")).argmin(1)
        valid = pos_mask.any(1) & neg_mask.any(1)
    return pos, neg, valid


def _mined(emb: torch.Tensor, pseudo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (V,) anchor->hardest positive and anchor->hardest negative for valid anchors."""
    if emb.dim() != 2 or pseudo.shape != (emb.shape[0],):
        raise ValueError(f"emb must be (N, D) and pseudo (N,), got {tuple(emb.shape)} and {tuple(pseudo.shape)}")
    pos, neg, valid = batch_hard_mining(emb, pseudo)
    d = pairwise_distances(emb)
    rows = torch.arange(len(emb), device=emb.device)
    return d[rows, pos][valid], d[rows, neg][valid]


def pairwise_contrastive(emb: torch.Tensor, pseudo: torch.Tensor, margin: float) -> torch.Tensor:
    """Contrastive loss (Hadsell et al. 2006) on each anchor's hardest positive and negative pair.

    Args:
        emb: (N, D) embeddings (usually L2-normalised, so distances lie in [0, 2]).
        pseudo: (N,) int64 pseudo-labels.
        margin: negatives farther apart than this cost nothing.
    Returns:
        () mean over valid anchors of ``d(a, p)^2 + max(0, margin - d(a, n))^2``; 0 (with a
        gradient path) when no anchor has both a positive and a negative.
    """
    dp, dn = _mined(emb, pseudo)
    if dp.numel() == 0:
        return emb.sum() * 0.0
    return (dp.pow(2) + F.relu(margin - dn).pow(2)).mean()


def triplet_hard(emb: torch.Tensor, pseudo: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017).

    Args:
        emb: (N, D) embeddings.
        pseudo: (N,) int64 pseudo-labels.
        margin: required gap between the hardest negative and the hardest positive distance.
    Returns:
        () mean over valid anchors of ``max(0, d(a, p) - d(a, n) + margin)``; 0 (with a gradient
        path) when no anchor has both a positive and a negative.
    """
    dp, dn = _mined(emb, pseudo)
    if dp.numel() == 0:
        return emb.sum() * 0.0
    return F.relu(dp - dn + margin).mean()
