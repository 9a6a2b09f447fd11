"""RUC losses: hand-computed values and 'goes down under a few optimiser steps'."""
import torch

from core.losses.ruc import (
    co_refine,
    consistency_loss,
    guess_labels,
    mix,
    mixmatch_lambda,
    sharpen,
    smooth_targets,
    smoothed_cross_entropy,
    soft_cross_entropy,
)


def test_sharpen_hand_computed():
    p = torch.tensor([[0.6, 0.4], [0.5, 0.5]])
    # 0.6^2 = 0.36, 0.4^2 = 0.16 -> / 0.52
    torch.testing.assert_close(sharpen(p, 0.5), torch.tensor([[0.36 / 0.52, 0.16 / 0.52], [0.5, 0.5]]))
    torch.testing.assert_close(sharpen(p, 1.0), p)


def test_mix_hand_computed():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    xm, ym = mix(x, y, torch.tensor([1, 0]), 0.75)
    torch.testing.assert_close(xm, torch.tensor([[0.25], [0.75]]))
    torch.testing.assert_close(ym, torch.tensor([[0.75, 0.25], [0.25, 0.75]]))
    assert mixmatch_lambda(0.3) == 0.7 and mixmatch_lambda(0.8) == 0.8


def test_smoothing_and_guess_and_co_refine():
    torch.testing.assert_close(smooth_targets(torch.tensor([0]), 3, 0.3), torch.tensor([[0.8, 0.1, 0.1]]))
    g = guess_labels([torch.tensor([[0.8, 0.2]]), torch.tensor([[0.4, 0.6]])], 0.5)   # mean 0.6/0.4
    torch.testing.assert_close(g, torch.tensor([[0.36 / 0.52, 0.16 / 0.52]]))
    own = torch.tensor([[0.2, 0.8]])
    other = torch.tensor([[0.5, 0.5]])
    # w = other[label 0] = 0.5 -> 0.5*[1,0] + 0.5*[0.2,0.8] = [0.6, 0.4] -> T=1 keeps it
    torch.testing.assert_close(co_refine(torch.tensor([0]), own, other, 1.0), torch.tensor([[0.6, 0.4]]))
    # a peer that fully trusts the label gives the label back
    trust = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(co_refine(torch.tensor([0]), own, trust, 0.5), torch.tensor([[1.0, 0.0]]))


def _goes_down(loss_fn, targets):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 5, generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)               # the weights must not depend on which tests ran before
        model = torch.nn.Linear(5, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    first = loss_fn(model(x), targets).item()
    for _ in range(20):
        loss = loss_fn(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, loss_fn(model(x), targets).item()


def test_losses_go_down():
    labels = torch.arange(16) % 3
    soft = torch.softmax(torch.randn(16, 3, generator=torch.Generator().manual_seed(1)) * 3, 1)
    for fn, t in [
        (lambda z, t: smoothed_cross_entropy(z, t, 0.1), labels),
        (lambda z, t: smoothed_cross_entropy(z, t, 0.1), soft),
        (soft_cross_entropy, soft),
        (consistency_loss, soft),
    ]:
        first, last = _goes_down(fn, t)
        assert last < 0.8 * first, (first, last)
