"""SSL / metric-learning losses: hand-computed values, mining, and each loss goes down."""
from __future__ import annotations

import math

import pytest
import torch

from core.losses.ssl import batch_hard_mining, nt_xent, pairwise_contrastive, rotation_loss, triplet_hard


def test_nt_xent_matches_hand_computed_value_on_4_samples():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    z2 = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])
    tau = 0.5
    # rows normalised: a=(1,0) b=(0,1) c=(1,1)/√2 d=(-1,1)/√2; positives a<->c, b<->d
    r = 1 / math.sqrt(2)
    s = {("a", "b"): 0.0, ("a", "c"): r, ("a", "d"): -r, ("b", "c"): r, ("b", "d"): r, ("c", "d"): 0.0}
    sim = lambda i, j: s.get((i, j), s.get((j, i)))
    pos = {"a": "c", "b": "d", "c": "a", "d": "b"}
    total = 0.0
    for i in "abcd":
        den = sum(math.exp(sim(i, k) / tau) for k in "abcd" if k != i)
        total += -math.log(math.exp(sim(i, pos[i]) / tau) / den)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(total / 4, rel=1e-6)


def test_rotation_loss_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 3))
    assert rotation_loss(logits, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)


def test_batch_hard_mining_picks_hardest_positive_and_negative():
    # 1-D points: labels 0 at 0, 1, 3 ; labels 1 at 3.5, 10
    emb = torch.tensor([[0.0], [1.0], [3.0], [3.5], [10.0]])
    pseudo = torch.tensor([0, 0, 0, 1, 1])
    pos, neg, valid = batch_hard_mining(emb, pseudo)
    assert pos.tolist() == [2, 2, 0, 4, 3]      # farthest same-label
    assert neg.tolist() == [3, 3, 3, 2, 2]      # nearest other-label
    assert valid.all()


def test_triplet_hard_value_and_anchor_without_positive_is_ignored():
    emb = torch.tensor([[0.0], [1.0], [3.0], [3.5], [10.0], [20.0]])
    pseudo = torch.tensor([0, 0, 0, 1, 1, 2])   # label 2 has no positive: not an anchor
    m = 0.5
    # anchors 0..4: d(a,p) - d(a,n) + m
    terms = [3 - 3.5 + m, 2 - 2.5 + m, 3 - 0.5 + m, 6.5 - 0.5 + m, 6.5 - 7 + m]
    expected = sum(max(0.0, t) for t in terms) / 5
    assert triplet_hard(emb, pseudo, m).item() == pytest.approx(expected, rel=1e-6)


def test_pairwise_contrastive_value():
    emb = torch.tensor([[0.0], [0.5], [1.0]])
    pseudo = torch.tensor([0, 0, 1])
    m = 1.0
    # anchor 0: p=1 (0.5), n=2 (1.0) -> 0.25 + 0 ; anchor 1: p=0 (0.5), n=2 (0.5) -> 0.25 + 0.25
    # anchor 2 has no positive
    assert pairwise_contrastive(emb, pseudo, m).item() == pytest.approx((0.25 + 0.5) / 2, rel=1e-6)


def test_no_valid_anchor_gives_zero_with_gradient():
    emb = torch.randn(3, 4, requires_grad=True)
    loss = triplet_hard(emb, torch.tensor([0, 1, 2]), 0.2)
    loss.backward()
    assert loss.item() == 0.0 and emb.grad is not None


def _descends(make_loss, params, steps: int = 30, lr: float = 0.05) -> tuple[float, float]:
    opt = torch.optim.Adam(params, lr=lr)
    first = None
    for _ in range(steps):
        loss = make_loss()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, make_loss().item()


@pytest.mark.parametrize("name", ["nt_xent", "rotation", "contrastive", "triplet"])
def test_each_loss_goes_down(name):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=g, requires_grad=True)
    y = torch.randn(16, 8, generator=g, requires_grad=True)
    pseudo = torch.arange(16) % 4
    margin = 0.5
    if name == "nt_xent":
        f = lambda: nt_xent(x, y, 0.5)
    elif name == "rotation":
        f = lambda: rotation_loss(x[:, :4], pseudo)
    elif name == "contrastive":
        f = lambda: pairwise_contrastive(torch.nn.functional.normalize(x, dim=1), pseudo, margin)
    else:
        f = lambda: triplet_hard(torch.nn.functional.normalize(x, dim=1), pseudo, margin)
    before, after = _descends(f, [x, y])
    assert after < before * 0.8


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        nt_xent(torch.zeros(2, 3), torch.zeros(3, 3), 0.5)
    with pytest.raises(ValueError):
        nt_xent(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)
    with pytest.raises(ValueError):
        rotation_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64))
