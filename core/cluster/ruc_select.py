"""Clean / unclean split of pseudo-labels for RUC (pure functions, numpy in, bool mask out).

A sample is *clean* when its pseudo-label looks trustworthy; RUC trains on clean samples as
labelled data and treats the rest as unlabelled. Three strategies, after Park et al. (CVPR 2021):

- :func:`select_confidence` - the model that produced the labels is confident and agrees.
- :func:`select_metric` - the sample's neighbours in an embedding space vote for its label.
- :func:`select_hybrid` - both.

A label a person corrected (``fixed_labels >= 0``) is always clean. Ground truth never enters.
"""
from __future__ import annotations

import numpy as np
import torch

from core.cluster.inputs import input_tensor
from core.errors import ParameterError

# Rows per block of the N x N similarity product: bounds memory to ~block * N floats.
_KNN_BLOCK = 1024


def _check_labels(labels: np.ndarray, n: int, what: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ParameterError(
            f"{what} has shape {labels.shape} but the data has {n} samples: "
            "labels whose ids are not in the dataset; pass one label per sample"
        )
    if labels.dtype.kind not in "iub":   # floats that are whole numbers pass; 0.5, NaN, text do not
        whole = labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels) & (labels == np.round(labels))))
        if not whole:
            raise ParameterError(
                f"{what} must be whole-number cluster ids, got {labels.dtype} values such as "
                f"{labels.ravel()[:3].tolist()}; pass integer ids (one per sample)"
            )
    return labels.astype(np.int64, copy=False)


def _with_fixed(mask: np.ndarray, fixed_labels: np.ndarray | None) -> np.ndarray:
    if fixed_labels is None:
        return mask
    fixed = _check_labels(fixed_labels, len(mask), "fixed_labels")
    return mask | (fixed >= 0)


def select_confidence(
    probs: np.ndarray, labels: np.ndarray, tau: float, *, fixed_labels: np.ndarray | None = None
) -> np.ndarray:
    """Clean iff the model's top class is the pseudo-label and its probability is >= ``tau``.

    Precisely: ``argmax_j probs[i, j] == labels[i]`` (first index wins ties) and
    ``probs[i, labels[i]] >= tau``. ``probs`` (N, k) rows sum to 1; ``labels`` (N,) in [0, k).
    Raises ParameterError when ``tau`` selects no sample (before adding corrected labels).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ParameterError(f"probs must be (N, k), got shape {probs.shape}")
    labels = _check_labels(labels, len(probs))
    if not 0.0 <= tau <= 1.0:
        raise ParameterError(f"tau must be in [0, 1], got {tau}")
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ParameterError(f"labels must be in [0, {probs.shape[1]}) to index probs")
    own = probs[np.arange(len(labels)), labels]
    agrees = probs.argmax(1) == labels
    mask = agrees & (own >= tau)
    if not mask.any():
        if not agrees.any():
            raise ParameterError("no sample's top class is its label, so no tau selects a clean "
                                 "sample; check that probs and labels use the same cluster ids")
        # only a sample whose top class is its label can be clean; the suggested tau is its
        # confidence rounded down, so that it really selects that sample
        best = own[agrees].max()
        raise ParameterError(
            f"tau={tau} selects no clean sample: the most confident sample whose top class is "
            f"its label has {best:.6f}; use a lower tau (tau <= {np.floor(best * 1e4) / 1e4:.4f} "
            "keeps at least one)"
        )
    return _with_fixed(mask, fixed_labels)


def knn_indices(embedding: np.ndarray, k_neighbors: int, *, device: str | torch.device = "cpu") -> np.ndarray:
    """(N, k) indices of each row's k most cosine-similar other rows (self excluded).

    The embedding is centred first: raw pixels are all positive, and without centring every
    pair would look similar.
    """
    emb = np.asarray(embedding)
    if emb.ndim != 2:
        raise ParameterError(f"embedding must be (N, D), got shape {emb.shape}")
    n = len(emb)
    if not 1 <= k_neighbors < n:
        raise ParameterError(
            f"k_neighbors={k_neighbors} must be at least 1 and below the number of samples ({n}); "
            f"use k_neighbors <= {max(1, n - 1)}"
        )
    if not np.isfinite(emb).all():
        raise ParameterError("embedding contains NaN or infinite values; clean or re-extract the features")
    z = input_tensor(emb, torch.float32).to(device)
    z = z - z.mean(0, keepdim=True)
    z = torch.nn.functional.normalize(z, dim=1)
    out = torch.empty((n, k_neighbors), dtype=torch.int64)
    for s in range(0, n, _KNN_BLOCK):
        sim = z[s:s + _KNN_BLOCK] @ z.T
        rows = torch.arange(sim.shape[0], device=sim.device)
        sim[rows, rows + s] = -float("inf")          # never your own neighbour
        out[s:s + _KNN_BLOCK] = sim.topk(k_neighbors, dim=1).indices.cpu()
    return out.numpy()


def knn_vote_mask(neighbors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Clean iff the pseudo-label is the strict plurality among the neighbours' labels.

    ``neighbors`` (N, k) int indices, ``labels`` (N,). Ties count as disagreement (unclean):
    a split vote is not evidence for the label.
    """
    labels = np.asarray(labels, dtype=np.int64)
    nl = labels[neighbors]                                   # (N, k)
    own = (nl == labels[:, None]).sum(1)
    n_classes = int(labels.max()) + 1
    counts = np.zeros((len(labels), n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(labels)), nl.shape[1]), nl.ravel()), 1)
    counts[np.arange(len(labels)), labels] = -1              # best *other* label
    return own > counts.max(1)


def select_metric(
    embedding: np.ndarray, labels: np.ndarray, k_neighbors: int, *, fixed_labels: np.ndarray | None = None
) -> np.ndarray:
    """Clean iff the ``k_neighbors`` cosine nearest neighbours (self excluded) of a sample in
    ``embedding`` (N, D) vote for its pseudo-label by strict plurality (ties: unclean).

    Raises ParameterError when ``k_neighbors >= N``.
    """
    labels = _check_labels(labels, len(np.asarray(embedding)))
    mask = knn_vote_mask(knn_indices(embedding, k_neighbors), labels)
    return _with_fixed(mask, fixed_labels)


def select_hybrid(
    probs: np.ndarray,
    embedding: np.ndarray,
    labels: np.ndarray,
    tau: float,
    k_neighbors: int,
    *,
    fixed_labels: np.ndarray | None = None,
) -> np.ndarray:
    """Clean iff both :func:`select_confidence` and :func:`select_metric` say clean."""
    mask = select_confidence(probs, labels, tau) & select_metric(embedding, labels, k_neighbors)
    return _with_fixed(mask, fixed_labels)


def centroid_probs(embedding: np.ndarray, labels: np.ndarray, n_classes: int, temperature: float = 0.1) -> np.ndarray:
    """Soft assignments (N, k) from the labels alone, for the confidence strategy when the
    clustering gave no probabilities: softmax over cosine similarity to each cluster's centroid
    (centred, L2-normalised embedding) divided by ``temperature``. Empty clusters get 0."""
    z = input_tensor(np.asarray(embedding), torch.float32)
    z = torch.nn.functional.normalize(z - z.mean(0, keepdim=True), dim=1)
    lab = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    cent = torch.zeros(n_classes, z.shape[1]).index_add_(0, lab, z)
    present = torch.bincount(lab, minlength=n_classes) > 0
    sim = z @ torch.nn.functional.normalize(cent, dim=1).T / temperature
    sim[:, ~present] = -float("inf")
    return torch.softmax(sim, dim=1).numpy()


def knn_agreement(neighbors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) fraction of each sample's neighbours (``neighbors`` (N, k) indices) sharing its label."""
    labels = np.asarray(labels, dtype=np.int64)
    return (labels[neighbors] == labels[:, None]).mean(1)


def fill_clusters(
    mask: np.ndarray, labels: np.ndarray, score: np.ndarray, min_fraction: float,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Class-balanced top-up: every cluster gets at least ``ceil(min_fraction * size)`` clean
    members, adding its ``eligible`` members with the highest ``score`` (all members when
    ``eligible`` is None). A cluster that mixes two classes fails a global threshold as a whole;
    this keeps its purest part, so no cluster is left without training labels."""
    mask = mask.copy()
    eligible = np.ones(len(mask), bool) if eligible is None else eligible
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        need = int(np.ceil(min_fraction * len(members))) - int(mask[members].sum())
        if need <= 0:
            continue
        pool = members[~mask[members] & eligible[members]]
        mask[pool[np.argsort(-score[pool], kind="stable")[:need]]] = True
    return mask


def cap_clusters(mask: np.ndarray, labels: np.ndarray, score: np.ndarray, max_fraction: float) -> np.ndarray:
    """Class-balanced trim: each cluster keeps at most ``ceil(max_fraction * size)`` of its
    ``mask`` members, those with the highest ``score``. A loose selector can pass nearly every
    sample; the best-ranked part of each cluster is far purer."""
    out = np.zeros_like(mask)
    for c in np.unique(labels):
        members = np.flatnonzero((labels == c) & mask)
        keep = int(np.ceil(max_fraction * (labels == c).sum()))
        out[members[np.argsort(-score[members], kind="stable")[:keep]]] = True
    return out


def keep_every_cluster(mask: np.ndarray, labels: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Make sure every cluster present in ``labels`` keeps at least one clean sample (its member
    with the highest ``score``), so selection alone never deletes a cluster."""
    mask = mask.copy()
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if not mask[members].any():
            mask[members[np.argmax(score[members])]] = True
    return mask
