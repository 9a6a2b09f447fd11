"""DAC — Deep Adaptive Image Clustering (Chang et al., ICCV 2017), re-implemented from the paper.

Training loop only; the network lives in :mod:`core.nn.dac_net`, the losses in
:mod:`core.losses.dac`, the augmentations in :mod:`core.augment`.

Each step: two random views of a batch go through the network; the similarities of the *weak*
view's label features (no gradient) choose confident pairs (``> upper`` same cluster,
``< lower`` different cluster); the cross-view similarities are trained towards 1 / 0 on those
pairs (each sample and its own other view always counts as "same"). Pairs of samples a person
has labelled (``fixed_labels``) are always selected, with the relation the person gave.

By default (``start="kmeans"``) the network first learns k-means' clusters of the same input and
DAC's training goes on from there; after training, a label-free check (:mod:`core.cluster.dac_guard`)
keeps the k-means start when DAC's clusters score below it (``kept_start_``, ``kept_reason_``).

``history_`` has one record per epoch of the kept training (with ``n_init`` > 1 the callback sees
every training's epochs, each record tagged ``init``), and when the start was kept a last record
without ``epoch`` that says so; ``inits_`` summarises every training, ``guard_`` the check.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from core.augment import strong_augment, weak_augment
from core.cluster.base import BaseClusterer, Callback, history_scores
from core.cluster.inputs import input_tensor
from core.device import resolve_device, set_cpu_threads
from core.errors import ParameterError, TrainingError
from core.losses.dac import balance_loss, dac_loss, pairwise_similarity, select_pairs, threshold_schedule
from core.nn.dac_net import DACConvNet, DACHead, init_weights

INPUTS = ("auto", "images", "features")
STARTS = ("kmeans", "none")
STANDARDIZE = ("global", "features")


@dataclass
class _Prepared:
    """Validated input: what kind, the tensor to train on, and how to preprocess batches."""

    kind: str                     # "images" | "features"
    data: torch.Tensor            # images: (N, C, H, W) uint8 or float32 in [0, 1]; features: (N, D) float32
    mean: torch.Tensor | None = None   # features: standardisation statistics
    std: torch.Tensor | None = None


@dataclass
class _Run:
    """One training run (of ``n_init``): its network, last finished epoch, history."""

    init: int
    model: torch.nn.Module | None = None
    state: dict | None = None
    labels: np.ndarray | None = None
    confidence: np.ndarray | None = None
    mean_confidence: float = -1.0
    start_agreement: float | None = None   # share of the k-means start the network reproduced
    history: list = field(default_factory=list)


class DAC(BaseClusterer):
    """Deep Adaptive Clustering.

    Parameters (keyword-only):
        n_clusters: number of clusters k (2 .. n_samples).
        epochs: passes over the data; the thresholds move linearly from start to end values.
        batch_size: samples per step (pairs are formed within a batch).
        u_start, u_end: upper threshold (pairs above it are "same cluster"), falling.
        l_start, l_end: lower threshold (pairs below it are "different cluster"), rising. l_start
            0.455 is the paper's; a lower start (0.2) let end-to-end training on digits collapse
            into a few clusters, and frozen features score the same with either.
        lr: Adam learning rate.
        augment: augmentation strength (0 = none, 1 = default ranges).
        hflip: allow left-right mirroring in augmentation (off for digits/text).
        balance: weight of a small regulariser keeping clusters in use (KL of the batch's mean
            assignment from uniform; 0 = the paper's loss only). Default 1, the value every tuned
            setting uses (Fashion-MNIST features: 0.3 gave ACC 0.54 where 1 gave 0.67).
        image_size: images are resized to this many pixels square (None = keep, 8..96).
        width: channels of the ConvNet's first block (the paper: 64).
        hidden: hidden units of the MLP head (features input).
        standardize: features input: "global" (centre, then one scale for every dimension, so
            distances keep the shape the features had, e.g. a UMAP space) or "features" (each
            dimension to unit variance, which inflates low-variance dimensions).
        temperature: the softmax temperature of the label features. "auto" = 1 (the paper's) when
            DAC starts from k-means; from a random network 0.1 for features, 1 for images.
            From k-means a sharp softmax (0.1) locks the network onto its first assignments and
            training then drifts (mean ACC, seeds 0-2): digits EfficientNet-Lite0 features 0.66
            -> 0.55, digit pixels 0.79 -> 0.76, LFW faces 0.98 -> 0.93, where 1 gives 0.72, 0.83
            and 0.98. From a random network the features head ends in batch norm, so its logits have
            unit scale: at 1 its label features stay soft and pairs cannot be told apart, and 0.1
            makes them nearly one-hot (Fashion-MNIST UMAP features, seed 0: ACC 0.59 -> 0.67).
            The ConvNet from a random start is better at 1 on digits (16 px, 40 epochs, seeds
            0/1: ACC 0.750/0.668 at 1, 0.494/0.575 at 0.3), although 0.3 solves the tests'
            three-pattern toy on more seeds (8 of 10 against 2).
        n_init: independent trainings (fresh initialisation, same seed stream); the one whose
            clusters are most clear-cut (highest mean confidence) is kept — no labels involved,
            like k-means' n_init with inertia. Default 1. Digits (UMAP space, full batch) needs 4:
            single trainings land at ACC 0.87 or 0.95 and the 0.87 ones are the less confident
            ones; on Fashion-MNIST it did not help (4: mean ACC 0.69; single trainings 0.70-0.71).
        start: "kmeans" = the network first learns the clusters of k-means (run on X as given,
            same seed and metric, as ``--algo kmeans`` would) and DAC's training goes on from there;
            "none" = a fresh random network (the paper). From a random head DAC trains towards its
            own first assignment, which is any split the head can draw: on 1280-d features every
            pair is already "confident" in the first epoch (mean ACC, seeds 0-2: digits
            EfficientNet-Lite0 0.44 where k-means gives 0.66; LFW faces 0.60 where it gives 0.98).
        start_epochs: at most this many epochs of cross-entropy on the k-means labels (stopping
            once the network gives 95 % of the samples their k-means cluster).
        guard: after training, keep the k-means start unless DAC's clusters score clearly above
            it by the label-free check of :mod:`core.cluster.dac_guard`; then ``kept_start_`` is
            True, ``kept_reason_`` says why and ``history_`` ends with a record saying so. Not after
            a stop (a stopped fit keeps its last finished epoch) nor with ``fixed_labels`` (a
            person's corrections steer; k-means knows nothing of them).
        metric: the k-means start's metric ("euclidean" | "cosine" | "mahalanobis"); the run's.
        input: "auto" (4-D/3-D arrays are images, 2-D arrays are feature vectors), "images",
            "features".
        device: "auto" | "cpu" | "cuda[:n]".
        random_state: the one seed.

    Attributes after fit, besides ``labels_``, ``confidence_``, ``history_``: ``start_labels_``
    (the k-means start), ``start_agreement_`` (share of it the network reproduced before DAC's
    training), ``kept_start_``, ``kept_reason_`` (None unless kept), ``guard_`` (the check's
    scores, None when it did not run). With the start kept, ``predict`` uses its centroids.
    """

    param_choices = {"input": INPUTS, "standardize": STANDARDIZE, "start": STARTS}

    def __init__(
        self,
        *,
        n_clusters: int = 10,
        epochs: int = 20,
        batch_size: int = 256,
        u_start: float = 0.95,
        u_end: float = 0.7,
        l_start: float = 0.455,
        l_end: float = 0.7,
        lr: float = 1e-3,
        augment: float = 1.0,
        hflip: bool = False,
        balance: float = 1.0,
        image_size: int | None = None,
        width: int = 64,
        hidden: int = 256,
        standardize: str = "global",
        temperature: float | str = "auto",
        n_init: int = 1,
        start: str = "kmeans",
        start_epochs: int = 20,
        guard: bool = True,
        metric: str = "euclidean",
        input: str = "auto",
        device: str = "auto",
        random_state: int | None = 0,
    ):
        self.n_clusters = n_clusters
        self.epochs = epochs
        self.batch_size = batch_size
        self.u_start = u_start
        self.u_end = u_end
        self.l_start = l_start
        self.l_end = l_end
        self.lr = lr
        self.augment = augment
        self.hflip = hflip
        self.balance = balance
        self.image_size = image_size
        self.width = width
        self.hidden = hidden
        self.standardize = standardize
        self.temperature = temperature
        self.n_init = n_init
        self.start = start
        self.start_epochs = start_epochs
        self.guard = guard
        self.metric = metric
        self.input = input
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ validation (one place)
    def _validate(self, X: Any, fixed_labels: Any = None) -> tuple[_Prepared, np.ndarray | None]:
        if self.input not in INPUTS:
            raise ParameterError(f"input={self.input!r} is not known; choose one of: {', '.join(INPUTS)}")
        arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ParameterError(f"X must be a numeric array, got dtype {arr.dtype}")
        kind = self.input
        if kind == "auto":
            kind = "features" if arr.ndim == 2 else "images"
        if kind == "features" and arr.ndim != 2:
            raise ParameterError(f"feature input must be 2-D (n_samples, n_features), got shape {arr.shape}")
        if kind == "images" and arr.ndim not in (3, 4):
            raise ParameterError(
                f"image input must be (N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3; "
                f"got {arr.ndim}-D shape {arr.shape}"
            )
        n = arr.shape[0]
        if n < 2:
            raise ParameterError(f"need at least 2 samples to cluster, got {n}")
        for name, v, lo in (("epochs", self.epochs, 1), ("batch_size", self.batch_size, 2)):
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise ParameterError(f"{name} must be an integer >= {lo}, got {v!r}")
        k = self.n_clusters
        if not isinstance(k, (int, np.integer)) or k < 2:
            raise ParameterError(f"n_clusters must be an integer >= 2 (one cluster says nothing), got {k!r}")
        if k > n:
            raise ParameterError(f"n_clusters={k} is more than the {n} samples given; choose k <= {n}")
        if not (0.0 <= self.l_start <= self.l_end <= 1.0 and 0.0 <= self.u_end <= self.u_start <= 1.0):
            raise ParameterError(
                "thresholds must satisfy 0 <= l_start <= l_end <= 1 and 0 <= u_end <= u_start <= 1 "
                f"(got u {self.u_start}->{self.u_end}, l {self.l_start}->{self.l_end})"
            )
        if self.u_end > self.l_end:
            raise ParameterError(
                f"u_end ({self.u_end}) must be <= l_end ({self.l_end}) so that the thresholds meet and "
                "every pair counts by the last epoch"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ParameterError(f"lr must be a positive number, got {self.lr!r}")
        if self.standardize not in STANDARDIZE:
            raise ParameterError(
                f"standardize={self.standardize!r} is not known; choose one of: {', '.join(STANDARDIZE)}"
            )
        if self.temperature != "auto" and not (
            isinstance(self.temperature, (int, float)) and 0 < self.temperature <= 10
        ):
            raise ParameterError(f"temperature must be 'auto' or a number in (0, 10], got {self.temperature!r}")
        if not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise ParameterError(f"n_init must be an integer >= 1, got {self.n_init!r}")
        if self.start not in STARTS:
            raise ParameterError(f"start={self.start!r} is not known; choose one of: {', '.join(STARTS)}")
        if isinstance(self.start_epochs, bool) or not isinstance(self.start_epochs, (int, np.integer)) \
                or self.start_epochs < 1:
            raise ParameterError(f"start_epochs must be an integer >= 1, got {self.start_epochs!r}")
        if not isinstance(self.guard, (bool, np.bool_)):
            raise ParameterError(f"guard must be true or false, got {self.guard!r}")
        if self.augment < 0:
            raise ParameterError(f"augment strength must be >= 0, got {self.augment}")
        if self.image_size is not None and not 8 <= self.image_size <= 96:
            raise ParameterError(f"image_size must be between 8 and 96 pixels, got {self.image_size}")
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr.reshape(n, -1))).any(1).sum())
            raise ParameterError(f"X contains NaN or infinite values in {bad} of {n} samples; remove or fill them")

        fixed = None
        if fixed_labels is not None:
            fixed = np.asarray(fixed_labels)
            if fixed.shape != (n,) or not np.issubdtype(fixed.dtype, np.integer):
                raise ParameterError(
                    f"fixed_labels must be an integer array of shape ({n},) with -1 for unknown, "
                    f"got dtype {fixed.dtype} shape {fixed.shape}"
                )
            if (fixed < -1).any():
                raise ParameterError("fixed_labels may only hold cluster numbers >= 0 or -1 (unknown)")
            fixed = fixed.astype(np.int64)

        if kind == "features":
            data = input_tensor(arr, torch.float32)
            mean = data.mean(0)
            if self.standardize == "global":     # one scale for all dimensions: keeps the geometry
                std = data.var(0).mean().sqrt().clamp_min(1e-6).expand(data.shape[1]).clone()
            else:
                std = data.std(0).clamp_min(1e-6)
            return _Prepared("features", data, mean, std), fixed
        return _Prepared("images", self._image_tensor(arr)), fixed

    @staticmethod
    def _image_tensor(arr: np.ndarray) -> torch.Tensor:
        """(N,H,W) | (N,C,H,W) | (N,H,W,C) → (N,C,H,W); uint8 stays uint8, floats go to [0, 1]."""
        if arr.ndim == 3:
            arr = arr[:, None]
        elif arr.shape[1] not in (1, 3) and arr.shape[-1] in (1, 3):
            arr = arr.transpose(0, 3, 1, 2)     # channels-last, as PIL/numpy images come
        if arr.shape[1] not in (1, 3):
            raise ParameterError(f"images must have 1 or 3 channels, got shape {arr.shape}")
        if min(arr.shape[2:]) < 8:
            raise ParameterError(f"images must be at least 8x8 pixels, got {arr.shape[2]}x{arr.shape[3]}")
        if arr.dtype == np.uint8:
            return input_tensor(np.ascontiguousarray(arr))
        t = input_tensor(np.ascontiguousarray(arr), torch.float32)
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:       # e.g. 0..255 floats or 0..16 (digits): rescale to [0, 1]
            t = (t - lo) / max(hi - lo, 1e-12)
        return t

    # ------------------------------------------------------------------ model + batches
    def _build(self, prep: _Prepared, g: torch.Generator) -> torch.nn.Module:
        k = self.n_clusters
        if prep.kind == "features":
            model = DACHead(prep.data.shape[1], k, hidden=self.hidden, temperature=self._temperature(prep.kind))
        else:
            c, h, w = prep.data.shape[1:]
            size = self.image_size or max(h, w)
            model = DACConvNet(k, in_channels=c, image_size=size, width=self.width,
                               temperature=self._temperature(prep.kind))
        return init_weights(model, g)

    def _batch(self, prep: _Prepared, idx: torch.Tensor, dev: torch.device) -> torch.Tensor:
        """Rows ``idx`` as network input on ``dev``: images float [0,1] at image_size; features standardised."""
        x = prep.data[idx].to(dev, non_blocking=True)
        if prep.kind == "features":
            return (x - prep.mean.to(dev)) / prep.std.to(dev)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        h, w = x.shape[2:]
        size = self.image_size or max(h, w)
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=size < max(h, w))
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _views(self, x: torch.Tensor, kind: str, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A weak view (chooses pairs) and a strong view (trained to agree) of batch ``x``."""
        s = float(self.augment)
        if s == 0:
            return x, x
        if kind == "features":   # no geometry in feature space: noise and feature dropout instead
            noise = torch.randn(x.shape, generator=g, device=g.device).to(x.device)
            keep = (torch.rand(x.shape, generator=g, device=g.device) > 0.1 * s).to(x.device)
            return x + 0.05 * s * noise, (x + 0.2 * s * noise) * keep
        weak = weak_augment(x, generator=g, hflip=self.hflip, strength=s)
        strong = strong_augment(x, generator=g, hflip=self.hflip, strength=s)
        return weak, strong

    @torch.no_grad()
    def _predict_proba(self, model: torch.nn.Module, prep: _Prepared, dev: torch.device) -> torch.Tensor:
        model.eval()
        out = []
        n = prep.data.shape[0]
        for start in range(0, n, 1024):
            idx = torch.arange(start, min(n, start + 1024))
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                out.append(model(self._batch(prep, idx, dev)).float().cpu())
        return torch.cat(out)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        eval_labels: Any = None,
        fixed_labels: Any = None,
        callback: Callback | None = None,
    ) -> DAC:
        """Train on X ((N,C,H,W)/(N,H,W)/(N,H,W,C) images or (N,D) features) and label it.

        ``eval_labels`` only scores history records; ``fixed_labels`` ((N,) int, -1 = unknown)
        are a person's corrections and do steer training.
        """
        prep, fixed = self._validate(X, fixed_labels)
        truth = None if eval_labels is None else np.asarray(eval_labels)
        if truth is not None and truth.shape != (prep.data.shape[0],):
            raise ParameterError(f"eval_labels must have shape ({prep.data.shape[0]},), got {truth.shape}")
        dev = resolve_device(self.device)
        if dev.type == "cpu":
            set_cpu_threads()
        g = torch.Generator().manual_seed(0 if self.random_state is None else int(self.random_state))
        fixed_t = None if fixed is None else torch.from_numpy(fixed)
        n_init = int(self.n_init)
        self.kept_start_, self.kept_reason_, self.guard_ = False, None, None
        start = self._kmeans_start(prep, dev) if self.start == "kmeans" or self.guard else None
        start_t = torch.from_numpy(start.labels_) if start is not None and self.start == "kmeans" else None

        self.history_ = []
        self.inits_ = []
        chosen: _Run | None = None
        stop = False
        for init in range(n_init):
            run = _Run(init)
            try:
                stop = self._train_once(run, prep, fixed_t, start_t, truth, dev, g, callback, n_init)
            except KeyboardInterrupt:
                if run.state is None and chosen is None:
                    raise
                stop = True
            if run.state is not None:
                self.inits_.append({"init": init, "mean_confidence": run.mean_confidence,
                                    "loss": run.history[-1]["loss"], "epochs": len(run.history)})
                # the restart whose clusters are the most clear-cut wins (no labels involved)
                if chosen is None or run.mean_confidence > chosen.mean_confidence:
                    chosen = run
            if stop:
                break
        assert chosen is not None and chosen.state is not None
        self.history_ = chosen.history
        self.best_init_ = chosen.init
        self._prep_stats = (prep.kind, prep.mean, prep.std, tuple(prep.data.shape[1:]))
        model = chosen.model
        model.load_state_dict(chosen.state)
        self.model_ = model.eval()
        self.mapping_ = self._mapping_from_fixed(chosen.labels, fixed)
        self.labels_ = self.mapping_[chosen.labels]
        self.confidence_ = np.clip(chosen.confidence, 0.0, 1.0)
        self.n_clusters_ = int(self.n_clusters)
        self.start_ = start
        self.start_agreement_ = chosen.start_agreement
        if start is not None:
            self.start_labels_ = start.labels_.astype(np.int64)
        if self.guard and start is not None and not stop and (fixed is None or not (fixed >= 0).any()):
            self._guard(prep, start, truth, dev)
        return self

    def _temperature(self, kind: str) -> float:
        if self.temperature == "auto":
            return 0.1 if kind == "features" and self.start == "none" else 1.0
        return float(self.temperature)

    def _train_once(self, run: _Run, prep: _Prepared, fixed_t, start_t, truth, dev, g, callback,
                    n_init: int) -> bool:
        """Train one network from a fresh initialisation into ``run``; True if asked to stop."""
        model = self._build(prep, g).to(dev)
        if dev.type == "cuda" and prep.kind == "images":
            model = model.to(memory_format=torch.channels_last)
        run.model = model
        n = prep.data.shape[0]
        bs = min(self.batch_size, n)
        if start_t is not None:
            run.start_agreement = self._learn_start(model, prep, start_t, bs, dev, g)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        for epoch in range(self.epochs):
            t0 = time.perf_counter()
            upper, lower = threshold_schedule(
                epoch, self.epochs, self.u_start, self.u_end, self.l_start, self.l_end
            )
            model.train()
            order = torch.randperm(n, generator=g)
            losses, fractions = [], []
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                if idx.numel() < 2:       # batch norm needs 2 samples; the leftover is skipped
                    continue
                loss, frac = self._step(model, opt, prep, idx, fixed_t, upper, lower, dev, g)
                losses.append(loss)
                fractions.append(frac)
            proba = self._predict_proba(model, prep, dev)
            conf, labels = proba.max(1)
            labels_np = labels.numpy().astype(np.int64)
            record: dict[str, Any] = {
                "epoch": epoch + 1, "upper": round(upper, 4), "lower": round(lower, 4),
                "selected_fraction": float(np.mean(fractions)), "loss": float(np.mean(losses)),
                "mean_confidence": float(conf.mean()),
                "seconds": time.perf_counter() - t0,
            }
            if n_init > 1:
                record["init"] = run.init + 1
            record.update(history_scores(labels_np, truth))
            run.history.append(record)
            run.labels, run.confidence = labels_np, conf.numpy().astype(np.float64)
            run.mean_confidence = float(conf.mean())
            run.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if callback is not None and callback(dict(record)) is False:
                return True
        return False

    def _kmeans_start(self, prep: _Prepared, dev: torch.device):
        """k-means on X as given (images: flattened pixels in [0, 1]), seeded like the run's own
        k-means, so the start is the clustering ``--algo kmeans`` gives in the same space."""
        from core.cluster.kmeans import KMeans

        km = KMeans(n_clusters=int(self.n_clusters), metric=self.metric, random_state=self.random_state,
                    device=str(dev))
        km.fit(_flat(prep.data))
        km.labels_ = np.asarray(km.labels_, dtype=np.int64)
        return km

    def _learn_start(self, model, prep: _Prepared, start_t: torch.Tensor, bs: int, dev, g) -> float:
        """Cross-entropy on the k-means labels (weak views) until the network reproduces 95 % of
        them or ``start_epochs`` have passed; returns the share it reproduces."""
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        n = prep.data.shape[0]
        agree = 0.0
        for _ in range(int(self.start_epochs)):
            model.train()
            order = torch.randperm(n, generator=g)
            for s in range(0, n, bs):
                idx = order[s:s + bs]
                if idx.numel() < 2:
                    continue
                weak, _ = self._views(self._batch(prep, idx, dev), prep.kind, g)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                    logits = model.logits(weak).float() / model.temperature
                loss = F.cross_entropy(logits, start_t[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            pred = self._predict_proba(model, prep, dev).argmax(1)
            agree = float((pred == start_t).float().mean())
            if agree >= 0.95:
                break
        return agree

    def _guard(self, prep: _Prepared, start, truth, dev: torch.device) -> None:
        """Keep the k-means start when DAC's clusters are worse by the label-free check."""
        from core.cluster import dac_guard

        verdict = dac_guard.compare(_flat(prep.data), start.labels_, self.labels_, device=dev)
        self.guard_ = record = verdict.record()
        if not verdict.keep_start:
            return
        self.kept_start_ = True
        self.kept_reason_ = record["message"] = verdict.message("DAC", "its k-means start")
        self.labels_ = start.labels_.copy()
        self.confidence_ = np.clip(np.asarray(start.confidence_, dtype=np.float64), 0.0, 1.0)
        self.mapping_ = np.arange(int(self.n_clusters))
        record.update(history_scores(self.labels_, truth))
        self.history_ = [*self.history_, record]

    def _step(self, model, opt, prep, idx, fixed_t, upper, lower, dev, g) -> tuple[float, float]:
        """One optimiser step on batch ``idx``; returns (loss, fraction of pairs selected)."""
        x = self._batch(prep, idx, dev)
        weak, strong = self._views(x, prep.kind, g)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            p_weak = model(weak)
            p_strong = model(strong)
        sim_weak = pairwise_similarity(p_weak).detach()
        pos, neg = select_pairs(sim_weak, upper, lower)
        pos |= torch.eye(len(idx), dtype=torch.bool, device=dev)   # a sample and its other view
        sim = pairwise_similarity(p_weak, p_strong)
        sim = 0.5 * (sim + sim.T)        # symmetric: both views learn from each pair
        if fixed_t is not None:
            # a person's corrections: always selected, with their relation, and averaged as a
            # term of their own so a few corrected samples are not outvoted by thousands of pairs
            f = fixed_t[idx].to(dev)
            both = (f[:, None] >= 0) & (f[None, :] >= 0)
            same = f[:, None] == f[None, :]
            pos, neg = pos & ~both, neg & ~both
            loss = dac_loss(sim, pos, neg) + dac_loss(sim, both & same, both & ~same)
            pos, neg = pos | (both & same), neg | (both & ~same)
        else:
            loss = dac_loss(sim, pos, neg)
        if self.balance > 0:
            loss = loss + self.balance * (balance_loss(p_weak) + balance_loss(p_strong))
        if not torch.isfinite(loss):
            raise TrainingError(
                f"DAC training diverged (loss is {float(loss.detach())}); lower the learning rate "
                f"(lr={self.lr}) or the augmentation strength and try again"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        b = len(idx)
        frac = (float((pos | neg).sum()) - b) / max(b * b - b, 1)
        return float(loss.detach()), frac

    def _mapping_from_fixed(self, labels: np.ndarray, fixed: np.ndarray | None) -> np.ndarray:
        """Renumber clusters so that a person's fixed labels keep their numbers where possible."""
        k = self.n_clusters
        mapping = np.arange(k)
        if fixed is None:
            return mapping
        known = (fixed >= 0) & (fixed < k)
        if not known.any():
            return mapping
        counts = np.zeros((k, k), dtype=np.int64)
        np.add.at(counts, (labels[known], fixed[known]), 1)
        rows, cols = linear_sum_assignment(-counts)
        mapping[rows] = cols
        return mapping

    # ------------------------------------------------------------------ predict
    def predict(self, X: Any) -> np.ndarray:
        """Cluster numbers for new samples shaped like the training input (the k-means start's
        nearest centroid when the guard kept it)."""
        if getattr(self, "kept_start_", False):
            return self._predict_start(X)
        proba = self.predict_proba(X)
        return self.mapping_[proba.argmax(1)]

    def _predict_start(self, X: Any) -> np.ndarray:
        kind, _, _, shape = self._prep_stats
        arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
        data = input_tensor(arr, torch.float32) if kind == "features" else self._image_tensor(arr)
        if tuple(data.shape[1:]) != shape:
            raise ParameterError(f"expected samples of shape {shape}, got {tuple(arr.shape[1:])}")
        return self.start_.predict(_flat(data))

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, k) soft assignments (columns in the network's own cluster order)."""
        if not hasattr(self, "model_"):
            raise ParameterError("this DAC has not been fitted yet; call fit(X) first")
        kind, mean, std, shape = self._prep_stats
        arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
        if kind == "features":
            if arr.ndim != 2 or arr.shape[1] != shape[0]:
                raise ParameterError(f"expected features of shape (N, {shape[0]}), got {arr.shape}")
            prep = _Prepared(kind, input_tensor(arr, torch.float32), mean, std)
        else:
            prep = _Prepared(kind, self._image_tensor(arr))
            if prep.data.shape[1] != shape[0]:
                raise ParameterError(f"the model was trained on {shape[0]}-channel images, got {arr.shape}")
        dev = next(self.model_.parameters()).device
        return self._predict_proba(self.model_, prep, dev).numpy()


def _flat(data: torch.Tensor) -> np.ndarray:
    """(N, ...) features or images as (N, D) float32 rows (uint8 pixels to [0, 1])."""
    flat = data.reshape(len(data), -1)
    return (flat.float() / 255.0 if flat.dtype == torch.uint8 else flat.float()).numpy()
