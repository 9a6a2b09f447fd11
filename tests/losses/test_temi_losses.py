"""core.losses.temi: shapes, weights, the marginal's EMA, and the loss going down."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.losses.temi import pair_weights, temi_loss, update_marginal


def test_shapes_and_the_best_value():
    H, B, k = 3, 5, 4
    g = torch.Generator().manual_seed(0)
    s = F.log_softmax(torch.randn(H, B, k, generator=g), -1)
    t = F.softmax(torch.randn(H, B, k, generator=g), -1)
    marginal = torch.full((H, k), 1.0 / k)
    out = temi_loss(s, s, t, t, marginal, beta=0.6)
    assert out.shape == (H,)
    # one-hot agreement, uniform marginal, weight 1: pmi = log k, the loss -log k
    one = F.one_hot(torch.arange(B) % k, k).float()[None].expand(H, B, k)
    best = temi_loss(torch.log(one.clamp_min(1e-30)), torch.log(one.clamp_min(1e-30)), one, one, marginal)
    torch.testing.assert_close(best, torch.full((H,), -math.log(k)))
    assert bool((out > best).all())


def test_weights_and_marginal():
    a = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])   # (H=1, B=2, k=2)
    b = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    torch.testing.assert_close(pair_weights(a, b), torch.tensor([1.0, 0.5]))
    m = update_marginal(torch.tensor([[0.5, 0.5]]), a, 0.75)
    torch.testing.assert_close(m, torch.tensor([[0.75 * 0.5 + 0.25 * 0.75, 0.75 * 0.5 + 0.25 * 0.25]]))


def test_loss_goes_down_and_pairs_end_together():
    """Pairs (i, i + 6) of 12 samples in 3 groups: a few Adam steps on the student logits lower
    the loss and put both members of each pair in the same cluster."""
    g = torch.Generator().manual_seed(0)
    H, n, k = 2, 12, 3
    logits = (0.1 * torch.randn(H, n, k, generator=g)).requires_grad_(True)
    a, b = torch.arange(6), torch.arange(6) + 6
    teacher = F.softmax(torch.randn(H, n, k, generator=g) * 3, -1)   # a sharp, fixed teacher
    teacher[:, b] = teacher[:, a]
    marginal = torch.full((H, k), 1.0 / k)
    opt = torch.optim.Adam([logits], lr=0.1)
    losses = []
    for _ in range(60):
        s = F.log_softmax(logits / 0.1, -1)
        loss = temi_loss(s[:, a], s[:, b], teacher[:, a], teacher[:, b], marginal).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.5
    pred = logits.argmax(-1)
    assert bool((pred[:, a] == pred[:, b]).all())
