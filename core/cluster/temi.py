"""TEMI — a clustering head for frozen features (after Adaloglou et al., 2023, "Exploring the
Limits of Deep Image Clustering using Pretrained Models"). Written from the paper; no code copied.

The features are never trained. Each sample is paired with one of its nearest neighbours in a
feature space, and many small heads (MLPs to k clusters) learn to put both members of a pair in the
same cluster: a student head is trained on one side against an EMA teacher on the other side with
the PMI-style loss of :mod:`core.losses.temi`, which divides by the teacher's cluster marginal so
no cluster takes everything. Every head starts from its own random weights; after training the head
with the lowest loss is kept (its own loss: no labels involved) and its teacher gives ``labels_``.

One or more feature spaces at once: ``fit(X)`` takes an (N, D) array or a list of them (row-aligned,
e.g. EfficientNet-Lite0 features, raw pixels and a UMAP of them). Each space is centred, reduced to
``pca_dim`` dimensions by an exact PCA and L2-normalised; the heads see the spaces side by side and
the neighbour of a pair comes from each space's own kNN list in turn (``knn_space="each"``) or
from the kNN of the spaces joined (``"joint"``).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.cluster.base import BaseClusterer, Callback, history_scores
from core.cluster.inputs import input_tensor
from core.device import resolve_device, set_cpu_threads
from core.errors import ParameterError, TrainingError
from core.losses.temi import temi_loss, update_marginal

KNN_SPACES = ("each", "joint")
AUTO_STEPS = 1200   # epochs="auto": about this many optimiser steps


@dataclass
class _Space:
    """How one feature space is turned into head input: centre, project, L2-normalise."""

    mean: torch.Tensor          # (D,)
    components: torch.Tensor    # (D, d)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize((x - self.mean) @ self.components, dim=1)


class _Heads(torch.nn.Module):
    """H independent two-layer MLP heads evaluated in one batched matmul: (B, D) -> (H, B, k)."""

    def __init__(self, n_heads: int, d_in: int, hidden: int, k: int, generator: torch.Generator):
        super().__init__()

        def init(*shape: int, fan_in: int) -> torch.nn.Parameter:
            bound = 1.0 / math.sqrt(fan_in)
            return torch.nn.Parameter((torch.rand(*shape, generator=generator) * 2 - 1) * bound)

        self.w1 = init(n_heads, d_in, hidden, fan_in=d_in)
        self.b1 = init(n_heads, 1, hidden, fan_in=d_in)
        self.w2 = init(n_heads, hidden, k, fan_in=hidden)
        self.b2 = init(n_heads, 1, k, fan_in=hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(torch.matmul(x[None], self.w1) + self.b1)
        return torch.matmul(h, self.w2) + self.b2


class TEMI(BaseClusterer):
    """Self-distillation on nearest-neighbour pairs of frozen features, many heads, the best kept.

    Parameters (keyword-only; stored as given, checked in ``fit``):
        n_clusters: number of clusters k (2 .. n_samples).
        heads: independent heads trained side by side; the one with the lowest loss is kept.
        epochs: passes over the samples (each sample is the anchor of one pair per epoch); "auto" =
            enough for about ``AUTO_STEPS`` (1,200) optimiser steps, at least 10: 150 epochs for the
            1,797 digits, 30 for 10,000 images, so small sets train as long as large ones.
        batch_size: pairs per step.
        knn: neighbours per sample a pair's partner is drawn from (in each space). Digits
            (pixels + EfficientNet-Lite0, 16 heads, seed 0): 20 gave ACC 0.91, 30 0.95, 50 0.96,
            while on Fashion-MNIST test 50 gave 0.58 against 0.74 at 20; 20 is the default for both.
        knn_space: "each" = the partner comes from the kNN list of one space, drawn per pair;
            "joint" = from the kNN of all spaces side by side (one list). Fashion-MNIST test,
            pixels + Lite0, seed 0: "each" 0.74, "joint" 0.63.
        beta: exponent of the PMI loss in (0, 1] (the paper: 0.6; 1 = plain PMI).
        pca_dim: each space is reduced to at most this many dimensions (exact PCA) before kNN
            and heads.
        hidden: hidden units of each head.
        lr, weight_decay: AdamW.
        student_temperature, teacher_temperature: softmax temperatures (the teacher's sharper).
        teacher_momentum: EMA momentum of the teacher weights. 0.9 (the paper: 0.996 over far more
            steps): with about a thousand steps a slower teacher leaves the heads near their random
            start (digits pixels, 150 epochs: ACC 0.69 at 0.99, 0.85 at 0.9).
        marginal_momentum: EMA momentum of the teacher's cluster marginal.
        device: "auto" | "cpu" | "cuda[:n]".
        random_state: the one seed (head weights, pair draws).

    Attributes after fit, besides ``labels_`` (the kept head's teacher argmax), ``confidence_`` (its
    probability of that cluster) and ``history_`` (one record per epoch): ``best_head_`` (0-based),
    ``head_losses_`` (H,) last-epoch loss of every head, ``probabilities_`` (N, k),
    ``n_spaces_``, ``space_dims_`` (input dimensions per space), ``neighbors_`` (list of (N, knn)
    index arrays, one per kNN list).
    """

    param_choices = {"knn_space": KNN_SPACES}
    multi_space = True   # fit takes a list of row-aligned feature spaces (the pipeline's --spaces)

    def __init__(
        self,
        *,
        n_clusters: int = 10,
        heads: int = 16,
        epochs: int | str = "auto",
        batch_size: int = 256,
        knn: int = 20,
        knn_space: str = "each",
        beta: float = 0.6,
        pca_dim: int = 128,
        hidden: int = 256,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.05,
        teacher_momentum: float = 0.9,
        marginal_momentum: float = 0.9,
        device: str = "auto",
        random_state: int | None = 0,
    ):
        self.n_clusters = n_clusters
        self.heads = heads
        self.epochs = epochs
        self.batch_size = batch_size
        self.knn = knn
        self.knn_space = knn_space
        self.beta = beta
        self.pca_dim = pca_dim
        self.hidden = hidden
        self.lr = lr
        self.weight_decay = weight_decay
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.teacher_momentum = teacher_momentum
        self.marginal_momentum = marginal_momentum
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ validation (one place)
    def _validate(self, X: Any) -> list[torch.Tensor]:
        spaces = _spaces(X)
        n = spaces[0].shape[0]
        if self.epochs != "auto" and (isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer))
                                      or self.epochs < 1):
            raise ParameterError(f"epochs must be 'auto' or an integer >= 1, got {self.epochs!r}")
        for name, lo in (("heads", 1), ("batch_size", 2), ("knn", 1), ("pca_dim", 1),
                         ("hidden", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ParameterError(f"{name} must be an integer >= {lo}, got {v!r}")
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ParameterError(f"n_clusters must be an integer >= 2 (one cluster says nothing), got {k!r}")
        if k > n:
            raise ParameterError(f"n_clusters={k} is more than the {n} samples given; choose k <= {n}")
        if self.knn >= n:
            raise ParameterError(f"knn={self.knn} needs more than {self.knn} samples, got {n}; lower knn")
        if self.knn_space not in KNN_SPACES:
            raise ParameterError(f"knn_space={self.knn_space!r} is not known; choose one of: {', '.join(KNN_SPACES)}")
        if not (isinstance(self.beta, (int, float)) and 0 < self.beta <= 1):
            raise ParameterError(f"beta must be a number in (0, 1], got {self.beta!r}")
        for name in ("lr", "student_temperature", "teacher_temperature"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ParameterError(f"{name} must be a positive number, got {v!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ParameterError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        for name in ("teacher_momentum", "marginal_momentum"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise ParameterError(f"{name} must be in [0, 1), got {v!r}")
        return spaces

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None, *, eval_labels: Any = None, callback: Callback | None = None) -> TEMI:
        """Cluster X: an (N, D) array, or a list of (N, D_s) arrays (one per feature space).

        ``eval_labels`` only scores the history records; ``callback(record)`` returning False stops,
        keeping the last finished epoch's result.
        """
        spaces = self._validate(X)
        n = spaces[0].shape[0]
        truth = None if eval_labels is None else np.asarray(eval_labels)
        if truth is not None and truth.shape != (n,):
            raise ParameterError(f"eval_labels must have shape ({n},), got {truth.shape}")
        dev = resolve_device(self.device)
        if dev.type == "cpu":
            set_cpu_threads()
        g = torch.Generator().manual_seed(0 if self.random_state is None else int(self.random_state))

        self._spaces = [_fit_space(x, int(self.pca_dim)) for x in spaces]
        parts = [s.apply(x) for s, x in zip(self._spaces, spaces, strict=True)]
        Z = _join(parts).to(dev)
        knn = int(self.knn)
        if self.knn_space == "joint" or len(parts) == 1:
            lists = [_knn(F.normalize(Z, dim=1), knn)]
        else:
            lists = [_knn(p.to(dev), knn) for p in parts]
        neighbors = torch.stack(lists)                      # (L, N, knn) on dev
        self.n_spaces_ = len(spaces)
        self.space_dims_ = [int(x.shape[1]) for x in spaces]
        self.neighbors_ = [nb.cpu().numpy() for nb in neighbors]

        k, H = int(self.n_clusters), int(self.heads)
        student = _Heads(H, Z.shape[1], int(self.hidden), k, g).to(dev)
        teacher = copy.deepcopy(student).requires_grad_(False)
        opt = torch.optim.AdamW(student.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
        marginal = torch.full((H, k), 1.0 / k, device=dev)
        bs = min(int(self.batch_size), n)
        epochs = self._epochs(n, bs)
        ts, tt = float(self.student_temperature), float(self.teacher_temperature)
        m_t, m_p = float(self.teacher_momentum), float(self.marginal_momentum)

        self.history_ = []
        result = None
        for epoch in range(epochs):
            t0 = time.perf_counter()
            order = torch.randperm(n, generator=g)
            which = torch.randint(len(lists), (n,), generator=g)
            pick = torch.randint(knn, (n,), generator=g)
            partner = neighbors[which.to(dev), torch.arange(n, device=dev), pick.to(dev)]
            head_loss = torch.zeros(H, device=dev)
            steps = 0
            for s in range(0, n, bs):
                a = order[s:s + bs].to(dev)
                b = partner[a]
                xa, xb = Z[a], Z[b]
                with torch.no_grad():
                    ta = F.softmax(teacher(xa) / tt, dim=-1)
                    tb = F.softmax(teacher(xb) / tt, dim=-1)
                sa = F.log_softmax(student(xa) / ts, dim=-1)
                sb = F.log_softmax(student(xb) / ts, dim=-1)
                losses = temi_loss(sa, sb, ta, tb, marginal, beta=float(self.beta))
                loss = losses.sum()
                if not torch.isfinite(loss):
                    raise TrainingError(f"TEMI training diverged (loss is {float(loss.detach())}); lower the "
                                        f"learning rate (lr={self.lr}) and try again")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for pt, ps in zip(teacher.parameters(), student.parameters(), strict=True):
                        pt.mul_(m_t).add_(ps.detach(), alpha=1.0 - m_t)
                    marginal = update_marginal(marginal, torch.cat([ta, tb], 1), m_p)
                head_loss += losses.detach()
                steps += 1
            head_loss = (head_loss / max(steps, 1)).cpu()
            best = int(head_loss.argmin())
            proba = _predict(teacher, Z, best, tt).cpu()
            conf, labels = proba.max(1)
            labels_np = labels.numpy().astype(np.int64)
            record: dict[str, Any] = {
                "epoch": epoch + 1, "progress": (epoch + 1) / epochs,
                "loss": float(head_loss.mean()), "best_head": best + 1, "head_loss": float(head_loss[best]),
                "clusters_used": int(len(np.unique(labels_np))), "mean_confidence": float(conf.mean()),
                "seconds": time.perf_counter() - t0,
            }
            record.update(history_scores(labels_np, truth))
            self.history_.append(record)
            result = (best, head_loss.numpy(), proba, labels_np, conf.numpy().astype(np.float64))
            if callback is not None and callback(dict(record)) is False:
                break

        assert result is not None
        self.best_head_, self.head_losses_, proba, self.labels_, conf = result
        self.probabilities_ = proba.numpy()
        self.confidence_ = np.clip(conf, 0.0, 1.0)
        self.n_clusters_ = k
        self.teacher_ = teacher.eval()
        return self

    def _epochs(self, n: int, bs: int) -> int:
        if self.epochs != "auto":
            return int(self.epochs)
        return max(10, math.ceil(AUTO_STEPS / math.ceil(n / bs)))

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, k) probabilities of the kept head for new samples in the same spaces as fit's."""
        if not hasattr(self, "teacher_"):
            raise ParameterError("this TEMI has not been fitted yet; call fit(X) first")
        spaces = _spaces(X)
        dims = [int(x.shape[1]) for x in spaces]
        if dims != self.space_dims_:
            raise ParameterError(f"expected {self.n_spaces_} space(s) of dimensions {self.space_dims_}, got {dims}")
        dev = self.teacher_.w1.device
        Z = _join([s.apply(x) for s, x in zip(self._spaces, spaces, strict=True)]).to(dev)
        return _predict(self.teacher_, Z, self.best_head_, float(self.teacher_temperature)).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Cluster numbers for new samples (the kept head's argmax)."""
        return self.predict_proba(X).argmax(1)


# ---------------------------------------------------------------------- helpers
def _spaces(X: Any) -> list[torch.Tensor]:
    """X as a list of (N, D_s) float32 CPU tensors, with every problem named at once."""
    items = list(X) if isinstance(X, (list, tuple)) else [X]
    if not items:
        raise ParameterError("no feature space given: pass an (N, D) array or a list of them")
    out: list[torch.Tensor] = []
    problems: list[str] = []
    for i, x in enumerate(items):
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        name = f"space {i}" if len(items) > 1 else "X"
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            problems.append(f"{name} is not numeric (dtype {arr.dtype})")
            continue
        if arr.ndim != 2:
            problems.append(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
            continue
        if any(st < 0 for st in arr.strides):   # a reversed view (torch takes no negative strides)
            arr = arr.copy()
        t = input_tensor(arr, torch.float32)
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).any(1).sum())
            problems.append(f"{name} has NaN or infinite values in {bad} of {len(t)} samples")
        out.append(t)
    rows = {int(t.shape[0]) for t in out}
    if len(rows) > 1:
        problems.append("the spaces must describe the same samples in the same order, but their row counts "
                        f"differ: {', '.join(str(int(t.shape[0])) for t in out)}")
    if problems:
        raise ParameterError("; ".join(problems) + ". Fix these and call fit again.")
    if out[0].shape[0] < 2:
        raise ParameterError(f"need at least 2 samples to cluster, got {out[0].shape[0]}")
    return out


def _fit_space(x: torch.Tensor, d: int) -> _Space:
    """Centre and project onto the top-``d`` principal axes (exact, deterministic: eigh of the
    covariance); a space with at most ``d`` dimensions keeps them all."""
    x64 = x.double()
    mean = x64.mean(0)
    if x.shape[1] <= d:
        return _Space(mean.float(), torch.eye(x.shape[1]))
    xc = x64 - mean
    _, vecs = torch.linalg.eigh(xc.T @ xc)
    comps = vecs[:, -d:].flip(1)
    # a fixed sign per axis (largest loading positive) so the projection never depends on the solver
    sign = torch.sign(comps[comps.abs().argmax(0), torch.arange(d)])
    return _Space(mean.float(), (comps * sign).float())


def _join(parts: list[torch.Tensor]) -> torch.Tensor:
    """Unit-norm spaces side by side, scaled so an average coordinate has unit mean square."""
    Z = torch.cat(parts, 1)
    return Z * math.sqrt(Z.shape[1] / len(parts))


def _knn(Z: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """(N, k) indices of each row's k most cosine-similar other rows (rows L2-normalised)."""
    out = []
    for s in range(0, len(Z), chunk):
        sim = Z[s:s + chunk] @ Z.T
        idx = torch.arange(s, min(s + chunk, len(Z)), device=Z.device)
        sim[idx - s, idx] = -float("inf")
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


@torch.no_grad()
def _predict(teacher: _Heads, Z: torch.Tensor, head: int, temperature: float, chunk: int = 4096) -> torch.Tensor:
    """(N, k) teacher probabilities of one head."""
    w1, b1, w2, b2 = teacher.w1[head], teacher.b1[head], teacher.w2[head], teacher.b2[head]
    out = []
    for s in range(0, len(Z), chunk):
        h = F.gelu(Z[s:s + chunk] @ w1 + b1)
        out.append(F.softmax((h @ w2 + b2) / temperature, dim=1))
    return torch.cat(out)
