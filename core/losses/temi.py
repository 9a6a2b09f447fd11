"""TEMI losses (Adaloglou et al., 2023, "Exploring the Limits of Deep Image Clustering using
Pretrained Models"), re-implemented from the paper as pure, typed functions.

H = heads, B = pairs in the batch, k = clusters. A pair is a sample ``a`` and one of its nearest
neighbours ``b`` in a frozen feature space. Each head is a student (trained) and a teacher (an
exponential moving average of the student, no gradient). The student's distribution on one side
of the pair is pulled towards the teacher's on the other side with the pointwise-mutual-information
objective, raised to the power ``beta`` inside the sum so that confident wrong neighbours weigh
less:

    pmi_beta(a, b) = log sum_c (q_s(c|a) q_t(c|b))^beta / q_t(c)

where ``q_t(c)`` is the teacher's cluster marginal (an EMA over batches; dividing by it keeps one
cluster from taking everything). The loss is ``-w(a, b) * pmi_beta``, symmetrised over the two
sides, and ``w(a, b)`` is the probability the teacher heads (all of them, averaged) put a and b in
the same cluster: pairs the ensemble doubts count less.
"""
from __future__ import annotations

import torch

__all__ = ["pair_weights", "temi_loss", "update_marginal"]

_EPS = 1e-8


def pair_weights(teacher_a: torch.Tensor, teacher_b: torch.Tensor) -> torch.Tensor:
    """How much each pair counts: the heads' mean probability that a and b share a cluster.

    Args:
        teacher_a, teacher_b: (H, B, k) teacher probabilities of the two sides of each pair.
    Returns:
        (B,) weights in [0, 1], detached.
    """
    return (teacher_a.detach() * teacher_b.detach()).sum(-1).mean(0)


def temi_loss(
    student_a: torch.Tensor,
    student_b: torch.Tensor,
    teacher_a: torch.Tensor,
    teacher_b: torch.Tensor,
    marginal: torch.Tensor,
    *,
    beta: float = 0.6,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The symmetric, weighted TEMI loss of every head.

    Args:
        student_a, student_b: (H, B, k) student *log*-probabilities (log_softmax of the
            temperature-scaled logits) of the two sides; these carry the gradient.
        teacher_a, teacher_b: (H, B, k) teacher probabilities (no gradient is taken through them).
        marginal: (H, k) the teacher's cluster marginal q_t(c) per head (positive, rows sum to 1).
        beta: the exponent in (0, 1]; 1 is the plain PMI, the paper uses 0.6.
        weights: (B,) per-pair weights (default: :func:`pair_weights` of the teachers).
    Returns:
        (H,) loss of each head (mean over the batch); the training loss is its sum, and the head
        with the lowest loss is the one TEMI keeps.
    """
    if weights is None:
        weights = pair_weights(teacher_a, teacher_b)
    log_prior = torch.log(marginal.detach().clamp_min(_EPS))[:, None, :]      # (H, 1, k)
    log_ta = torch.log(teacher_a.detach().clamp_min(_EPS))
    log_tb = torch.log(teacher_b.detach().clamp_min(_EPS))
    # log sum_c exp(beta * (log q_s + log q_t) - log q_t(c)), stable via logsumexp
    pmi_ab = torch.logsumexp(beta * (student_a + log_tb) - log_prior, dim=-1)   # (H, B)
    pmi_ba = torch.logsumexp(beta * (student_b + log_ta) - log_prior, dim=-1)
    return -(weights.detach()[None, :] * 0.5 * (pmi_ab + pmi_ba)).mean(1)


@torch.no_grad()
def update_marginal(marginal: torch.Tensor, teacher_probs: torch.Tensor, momentum: float) -> torch.Tensor:
    """EMA of the teacher's cluster marginal.

    Args:
        marginal: (H, k) current estimate.
        teacher_probs: (H, B, k) teacher probabilities of this batch.
        momentum: in [0, 1); 0 = the batch mean alone.
    Returns:
        (H, k) ``momentum * marginal + (1 - momentum) * mean_B(teacher_probs)`` (a new tensor).
    """
    return momentum * marginal + (1.0 - momentum) * teacher_probs.detach().mean(1)
