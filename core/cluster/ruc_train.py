"""RUC's training loop: two co-trained networks, label smoothing + co-refined targets on the
clean set, MixMatch (co-guessed sharpened labels, mixup, L2 consistency) on the unclean set,
and a clean set that grows each epoch as the networks become confident.

Kept apart from the estimator (validation, result attributes) and from the losses (pure math).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.cluster.ruc_select import keep_every_cluster, knn_vote_mask
from core.errors import TrainingError
from core.losses.ruc import (
    co_refine,
    consistency_loss,
    guess_labels,
    mix,
    mixmatch_lambda,
    smooth_targets,
    soft_cross_entropy,
)

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class TrainSpec:
    strategy: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    smoothing: float
    temperature: float      # sharpening temperature for guesses and refined targets
    mixup_alpha: float
    lambda_u: float         # weight of the unclean consistency loss (ramped up over the first epochs)
    grow_tau: float         # confidence/hybrid: least ensemble confidence for a sample to join the clean set
    warmup: int             # epochs of plain smoothed cross-entropy on the clean set first
    max_clean: float = 0.9  # the clean set grows towards this fraction of the data, never beyond
    sinkhorn_iters: int = 1  # alignment passes (see align)
    balance: str = "start"  # per-cluster sizes: the starting ones, the networks' ("free") or equal ("uniform")


@dataclass
class State:
    """What one finished epoch leaves behind (all numpy, CPU)."""

    labels: np.ndarray      # (N,) current pseudo-labels, internal ids 0..k-1
    clean: np.ndarray       # (N,) bool
    probs: np.ndarray       # (N, k) ensemble probabilities of the two networks


def predict_probs(nets: list[nn.Module], X: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """(N, k) mean softmax of the networks in eval mode, computed in batches, on the CPU."""
    return predict_each(nets, X, batch_size, device).mean(0)


def predict_each(nets: list[nn.Module], X: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """(n_nets, N, k) softmax of each network in eval mode, computed in batches, on the CPU."""
    outs = []
    for net in nets:
        net.eval()
    with torch.no_grad(), _autocast(device):
        for s in range(0, len(X), batch_size):
            xb = X[s:s + batch_size].to(device, non_blocking=True)
            outs.append(torch.stack([F.softmax(n(xb).float(), 1) for n in nets]).cpu())
    return torch.cat(outs, 1)


def _autocast(device: torch.device):
    # bf16 autocast on GPU (speed); a no-op context on CPU, where it would only slow things down.
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)


def _batches(idx: np.ndarray, n_steps: int, batch_size: int, gen: torch.Generator) -> list[np.ndarray]:
    """n_steps batches drawn by cycling through fresh random permutations of idx."""
    if len(idx) == 0:
        return [idx] * n_steps
    need = n_steps * batch_size
    perms = [idx[torch.randperm(len(idx), generator=gen).numpy()] for _ in range(math.ceil(need / len(idx)))]
    flat = np.concatenate(perms)[:need]
    return [flat[i * batch_size:(i + 1) * batch_size] for i in range(n_steps)]


def train(
    X: torch.Tensor,
    state: State,
    fixed: np.ndarray,
    nets: list[nn.Module],
    weak: Augment,
    strong: Augment,
    spec: TrainSpec,
    neighbors: np.ndarray | None,
    gen: torch.Generator,
    rng: np.random.Generator,
    device: torch.device,
    on_epoch: Callable[[int, State, float, float], bool],
) -> State:
    """Run up to ``spec.epochs`` epochs; ``on_epoch(epoch, state, loss, seconds)`` returning
    False stops after that epoch. X (N, ...) on the CPU; fixed (N,) bool = labels a person set."""
    k = state.probs.shape[1]
    n = len(X)
    opts = [torch.optim.AdamW(m.parameters(), lr=spec.lr, weight_decay=spec.weight_decay) for m in nets]
    steps = max(1, math.ceil(n / spec.batch_size))
    total = steps * spec.epochs
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
              for o in opts]
    fixed_t = torch.as_tensor(fixed)
    prior = np.bincount(state.labels, minlength=k) / n     # starting cluster sizes
    start_fraction = float(state.clean.mean())
    start_labels, start_clean = state.labels.copy(), state.clean.copy()
    ramp_epochs = max(1, (spec.epochs - spec.warmup) // 4)
    for epoch in range(1, spec.epochs + 1):
        t0 = time.perf_counter()
        # Networks start from scratch: their confidence means nothing until they have fit the
        # clean labels, so warm-up epochs use the labels alone and the unclean weight ramps up.
        warm = epoch <= spec.warmup
        w_u = spec.lambda_u * min(1.0, (epoch - spec.warmup) / ramp_epochs)
        labels_t = torch.as_tensor(state.labels)
        clean_idx, unclean_idx = np.flatnonzero(state.clean), np.flatnonzero(~state.clean)
        cb = _batches(clean_idx, steps, spec.batch_size, gen)
        ub = _batches(unclean_idx, steps, spec.batch_size, gen)
        total_loss = 0.0
        for ci, ui in zip(cb, ub, strict=True):
            xc = X[ci].to(device, non_blocking=True)
            yc = labels_t[ci].to(device)
            xu = X[ui].to(device, non_blocking=True) if len(ui) and not warm else None
            for net in nets:
                net.train()
            with torch.no_grad(), _autocast(device):
                xc_w = weak(xc, gen)
                pc = [F.softmax(m(xc_w).float(), 1) for m in nets]
                if xu is not None:
                    u1, u2 = weak(xu, gen), weak(xu, gen)
                    q = guess_labels([F.softmax(m(u).float(), 1) for m in nets for u in (u1, u2)],
                                     spec.temperature)
            fx = fixed_t[ci].to(device)
            xs = strong(xc, gen)
            for j, (net, opt) in enumerate(zip(nets, opts, strict=True)):
                # each network's clean targets are weighted by its *peer's* trust in the label
                hard = F.one_hot(yc, k).float()
                tc = hard if warm else co_refine(yc, pc[j], pc[1 - j], spec.temperature)
                tc = torch.where(fx[:, None], hard, tc)   # a person's label is the target
                tc = smooth_targets(tc, k, spec.smoothing)
                if xu is not None:
                    x_all, t_all = torch.cat([xs, u1, u2]), torch.cat([tc, q, q])
                else:
                    x_all, t_all = xs, tc
                lam = mixmatch_lambda(float(rng.beta(spec.mixup_alpha, spec.mixup_alpha)))
                perm = torch.randperm(len(x_all), generator=gen).to(device)
                xm, tm = mix(x_all, t_all, perm, lam)
                with _autocast(device):
                    logits = net(xm).float()
                nc = len(xc)
                loss = soft_cross_entropy(logits[:nc], tm[:nc])
                if xu is not None:
                    loss = loss + w_u * consistency_loss(logits[nc:], tm[nc:])
                if not torch.isfinite(loss):
                    raise TrainingError(f"RUC loss became {loss.item()} in epoch {epoch}; lower lr (now {spec.lr})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total_loss += loss.item() / (2 * steps)
            for s in scheds:
                s.step()
        state = _reselect(X, state, fixed, nets, spec, neighbors, device, grow=not warm, prior=prior,
                          quota=clean_quota(epoch, spec, start_fraction), start_labels=start_labels,
                          start_clean=start_clean)
        if on_epoch(epoch, state, total_loss, time.perf_counter() - t0) is False:
            break
    return state


def align(probs: np.ndarray, prior: np.ndarray, n_iter: int = 1) -> np.ndarray:
    """Distribution alignment: scale each column of ``probs`` (N, k) by ``prior / mean column``
    and renormalise the rows, so the predicted cluster sizes follow ``prior`` (k,) on average
    and no cluster can swallow the others or fade away. ``n_iter > 1`` repeats it
    (Sinkhorn-Knopp): the column means converge to ``prior`` even when the networks are
    confident, so the argmax sizes follow it too (one pass barely moves probabilities near 1)."""
    p = probs
    for _ in range(max(1, n_iter)):
        p = p * (prior / np.maximum(p.mean(0), 1e-8))[None]
        p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
    return p


def free_prior(probs: np.ndarray, start_prior: np.ndarray, floor: float = 0.25) -> np.ndarray:
    """Cluster sizes for ``balance="free"``: the networks' own (argmax counts of ``probs`` (N, k)),
    each at least ``floor`` times its starting size ``start_prior`` (k,), renormalised. The
    starting clustering may have split one class in two and merged two others: fixed quotas
    would keep every such wrong size, while the floor still stops a cluster from vanishing."""
    own = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)
    p = np.maximum(own, floor * start_prior)
    return p / p.sum()


def clean_quota(epoch: int, spec: TrainSpec, start_fraction: float) -> float:
    """Fraction of the data the clean set may hold after ``epoch``: the initial split's
    fraction through warm-up, then a linear ramp to ``max_clean`` over the first half of the
    remaining epochs (so the networks train on the full-size clean set for the second half)."""
    lo = min(start_fraction, spec.max_clean)
    ramp = max(1, (spec.epochs - spec.warmup) // 2)
    return lo + (spec.max_clean - lo) * min(1.0, max(0, epoch - spec.warmup) / ramp)


def _reselect(X, state: State, fixed, nets, spec: TrainSpec, neighbors, device, grow: bool,
              prior: np.ndarray, quota: float, start_labels: np.ndarray, start_clean: np.ndarray) -> State:
    """Re-select the clean set from scratch after an epoch (it may shrink as well as grow).

    Candidates: both networks predict the same cluster (after distribution alignment to the
    cluster sizes ``spec.balance`` names: the starting ones, the networks' own or equal ones),
    and the strategy's check holds for that prediction (ensemble confidence >= grow_tau; the
    embedding neighbours vote for it; or both). Then, per cluster,
    at most ``quota * prior_c * N`` candidates, the most confident first: the clean set keeps
    those proportions, so no cluster vanishes or swallows another; a cluster the networks would
    empty keeps its anchored initial clean samples. Labels a person set are always clean and
    always their own target.
    """
    each = predict_each(nets, X, max(256, spec.batch_size), device).numpy()
    probs = each.mean(0)
    if not grow:
        return State(labels=state.labels, clean=state.clean, probs=probs)
    n, k = probs.shape
    if spec.balance == "free":
        prior = free_prior(probs, prior)
    elif spec.balance == "uniform":
        prior = np.full(k, 1.0 / k)
    it = spec.sinkhorn_iters
    aligned = align(probs, prior, it)
    pred = aligned.argmax(1)
    agree = np.ones(n, bool)
    for p in each:
        agree &= align(p, prior, it).argmax(1) == pred
    # the initial split is precise: its samples stay clean with their starting labels unless
    # both networks agree on another cluster
    anchor = start_clean & ~fixed & ~(agree & (pred != start_labels))
    labels = np.where(fixed, state.labels, np.where(anchor, start_labels, pred))
    # ...but not all at once out of one cluster: had every member left cluster c, the networks
    # would delete a cluster the person asked for (digits, pixels -> UMAP-10 -> RUC's defaults:
    # the small cluster of 1s was swallowed by the 1s-and-8s one after warm-up, 10 became 9).
    # Its anchors stay, so it keeps its trusted core and its own training targets.
    for c in np.flatnonzero(np.bincount(labels, minlength=k) == 0):
        back = start_clean & ~fixed & (start_labels == c)
        anchor |= back
        labels[back] = c
    score = aligned[np.arange(n), labels]
    cand = agree & ~fixed & ~anchor
    if spec.strategy in ("confidence", "hybrid"):
        cand &= probs[np.arange(n), labels] >= spec.grow_tau
    if spec.strategy in ("metric", "hybrid"):
        cand &= knn_vote_mask(neighbors, labels)
    clean = fixed | anchor
    for c in range(k):
        members = np.flatnonzero(cand & (labels == c))
        room = int(round(quota * prior[c] * n)) - int((clean & (labels == c)).sum())
        if room > 0 and len(members):
            clean[members[np.argsort(-score[members], kind="stable")[:room]]] = True
    return State(labels=labels, clean=keep_every_cluster(clean, labels, score), probs=aligned)
