"""core.losses.dac: shapes, pair selection, the loss going down, the threshold schedule."""
from __future__ import annotations

import torch

from core.losses.dac import balance_loss, dac_loss, pairwise_similarity, select_pairs, threshold_schedule


def test_similarity_shape_range_and_diagonal():
    p = torch.softmax(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), 1)
    s = pairwise_similarity(p)
    assert s.shape == (6, 6)
    assert float(s.min()) >= 0 and float(s.max()) <= 1 + 1e-6
    torch.testing.assert_close(torch.diagonal(s), torch.ones(6))
    assert pairwise_similarity(p, p[:3]).shape == (6, 3)


def test_select_pairs_thresholds_and_crossing():
    s = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    pos, neg = select_pairs(s, 0.8, 0.2)
    assert pos.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    assert neg.tolist() == [[False, False, True], [False, False, False], [True, False, False]]
    pos, neg = select_pairs(s, 0.4, 0.6)       # crossed: everything off-diagonal is selected
    assert bool((pos ^ neg)[~torch.eye(3, dtype=torch.bool)].all()) and not bool((pos & neg).any())


def test_dac_loss_goes_down_and_separates():
    g = torch.Generator().manual_seed(0)
    logits = (0.1 * torch.randn(12, 3, generator=g)).requires_grad_(True)
    truth = torch.arange(12) % 3
    pos = (truth[:, None] == truth[None]) & ~torch.eye(12, dtype=torch.bool)
    neg = truth[:, None] != truth[None]
    opt = torch.optim.Adam([logits], lr=0.1)
    losses = []
    for _ in range(150):
        loss = dac_loss(pairwise_similarity(torch.softmax(logits, 1)), pos, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    pred = logits.argmax(1)
    # the pairwise relations are mostly learnt (plain BCE on pairs can leave a straggler)
    agree = ((pred[:, None] == pred[None]) == (truth[:, None] == truth[None])).float().mean()
    assert float(agree) >= 0.8


def test_dac_loss_empty_selection_is_zero_with_graph():
    p = torch.softmax(torch.randn(4, 3, requires_grad=True), 1)
    none = torch.zeros(4, 4, dtype=torch.bool)
    loss = dac_loss(pairwise_similarity(p), none, none)
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_balance_loss_goes_down():
    logits = torch.zeros(16, 4)
    logits[:, 0] = 3.0                      # everything in cluster 0
    logits = logits + 0.1 * torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    logits.requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=0.3)
    first = float(balance_loss(torch.softmax(logits, 1)).detach())
    for _ in range(50):
        loss = balance_loss(torch.softmax(logits, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    assert abs(float(balance_loss(torch.full((5, 4), 0.25)))) < 1e-6


def test_threshold_schedule_monotone_and_meeting():
    n = 7
    us, ls = zip(*(threshold_schedule(e, n, 0.95, 0.7, 0.2, 0.7) for e in range(n)), strict=True)
    assert us[0] == 0.95 and ls[0] == 0.2
    assert all(a > b for a, b in zip(us, us[1:], strict=False)) and all(a < b for a, b in zip(ls, ls[1:], strict=False))
    assert abs(us[-1] - ls[-1]) < 1e-9
    assert threshold_schedule(0, 1, 0.95, 0.7, 0.2, 0.7) == (0.7, 0.7)
