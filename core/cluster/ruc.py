"""RUC: robust learning on top of any clustering (after Park et al., "Improving Unsupervised
Image Clustering With Robust Learning", CVPR 2021). Written from the paper; no code copied.

RUC takes cluster labels from anything (k-means, DAC, labels a person corrected), splits them
into a clean set (trusted) and an unclean set (:mod:`core.cluster.ruc_select`), and co-trains
two networks to fix the unclean ones (:mod:`core.cluster.ruc_train`). Ground truth is used
only to score the history, never to train, select or match pseudo-labels.

Two input kinds (``input="auto"`` picks by the shape of X):

- ``"features"``: X (N, D) frozen feature vectors; MLP heads (:mod:`core.nn.heads`). Quick, and
  the way to go for large images (extract features first). Features are standardised per
  dimension; augmentation in feature space: weak = Gaussian noise (sigma 0.1) + 10 % dropout,
  strong = Gaussian noise (sigma 0.2) + 30 % dropout, each mask/noise drawn per sample.
- ``"images"``: X (N, H, W) or (N, C, H, W), C in {1, 3}, uint8 or float in [0, 1], 8 px or
  more; a small ConvNet (ResNet-18 above 96 px) trained with ``core.augment`` weak/strong views.

What works (bench/RESULTS.md, "RUC"): the clean set's precision bounds everything, so run the
selectors in the best label-free map you have (``embedding=``, e.g. UMAP of the features), not
in a space where the start's mistakes look right; train on a *different view* than the one the
start clustered in (images, or raw pixels in the features variant); ``balance="uniform"`` when
the start split one class and merged two others (k-means on digit pixels does), and a small
unclean weight (``lambda_u`` about 5) for small image sets.

Cluster ids: the ids present in the initial labels (and corrections) are kept; missing ids
(empty clusters) are skipped and ``labels_`` reuses the original ids. A singleton cluster is
kept (its one sample stays clean) but may lose or gain members during training. No cluster is
deleted: when both networks would move every member of a cluster elsewhere, its initial clean
samples stay in it.

Two options tuned on the digits once, ``overcluster`` (start with k + m clusters, merge back by kNN
connectivity) and ``regroup`` (move a group apart from its cluster to the one it is linked to),
left the code: each helped digits on one setting and cost Fashion-MNIST 4 to 11 points
(issue 29, item 6: an option stays only when it earns its place on more than one data set).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from core.cluster import ruc_select as sel
from core.cluster.base import BaseClusterer, Callback, history_scores
from core.cluster.inputs import input_tensor
from core.cluster.ruc_train import State, TrainSpec, predict_probs, train
from core.device import resolve_device, set_cpu_threads
from core.errors import ParameterError

STRATEGIES = ("confidence", "metric", "hybrid")
INPUTS = ("auto", "features", "images", "pixels")
BALANCES = ("start", "free", "uniform")
INITIALS = ("kmeans", "dac", "temi")   # clusterers RUC can start from when it gets no initial labels


class RUC(BaseClusterer):
    """Refine the labels of an existing clustering by robust co-training.

    Parameters (keyword-only; stored as given, checked in ``fit``):
        n_clusters: number of clusters; None = the ids present in the initial labels.
        initial: registry name of the clusterer run when ``fit`` gets no ``initial_labels``.
        initial_params: extra parameters for that clusterer.
        strategy: clean-set selection: "confidence" | "metric" | "hybrid" (see ruc_select).
        tau: confidence threshold of the initial split (probabilities from cluster centroids,
            see :func:`ruc_select.centroid_probs`); "confidence" and "hybrid" only.
        k_neighbors: neighbours voting in the embedding; "metric" and "hybrid" only.
        grow_tau: "confidence"/"hybrid": least ensemble confidence for a sample to join the clean
            set when it is re-selected after each epoch.
        min_clean, init_clean: class-balanced initial split: each cluster contributes at least
            ``min_clean`` and at most ``init_clean`` of its members, its best-ranked ones (centroid
            confidence; for "metric"/"hybrid" the share of neighbours agreeing first).
        max_clean: after warm-up the clean set is re-selected every epoch: samples both networks
            assign to the same cluster (after aligning the predicted cluster sizes to the
            starting ones) that pass the strategy's check, at most ``quota * start size`` per
            cluster, the quota ramping from the initial fraction to ``max_clean``. Initial clean
            samples stay clean with their label unless both networks agree on another one.
        epochs, batch_size, lr, weight_decay: training (AdamW, cosine schedule).
        warmup: first epochs train on the clean labels alone (no unclean loss, no refinement,
            no growth): networks start from scratch and their confidence means nothing yet.
        smoothing: label smoothing on clean targets.
        temperature: sharpening temperature (MixMatch guesses, co-refined targets).
        mixup_alpha: Beta(alpha, alpha) for mixup.
        lambda_u: weight of the unclean consistency loss.
        balance: "start" = per-cluster clean quotas and distribution alignment follow the starting
            cluster sizes; "free" = they follow the networks' current predicted sizes (each kept
            at >= 1/4 of its starting size), so a class the start split in two can be merged
            back; "uniform" = equal sizes (the equipartition prior of SCAN / SeLa / DAC's
            balance term): a merged pair must come apart and a split class must give back
            half, but it fights truly unequal classes.
        sinkhorn_iters: passes of the distribution alignment (1 = one rescaling; more =
            Sinkhorn-Knopp, so the predicted sizes really follow the balance prior even when
            the networks are confident).
        guard: when the networks train on the space the start clustered in (X is the embedding,
            as the pipeline runs RUC by default), keep the starting labels unless RUC's score
            clearly above them by the label-free check of :mod:`core.cluster.dac_guard` there.
            RUC's defaults drift on a UMAP map: digits (EfficientNet-Lite0) 0.79 -> 0.68,
            Fashion-MNIST 0.71 -> 0.60. Then ``kept_start_`` is True, ``kept_reason_`` says why and
            ``history_`` ends with a record saying so. Not with heads on another view (images,
            pixels, features apart from the embedding): the start's own space favours the start
            there (digits, pixels -> UMAP-10 -> k-means -> RUC on the images, bench/RESULTS.md's
            recipe: 0.911 against a 0.899 start, yet 0.861 against 0.893 by that check). Nor
            after a stop or with corrections.
        input: "auto" | "features" | "images" | "pixels". "pixels" is the features variant on
            X = flattened raw pixels in [0, 1] (N, D); the pipeline passes the dataset's pixels
            for it, so the heads see a second view while the selectors work in the space the
            start clustered in (Fashion-MNIST: +5.5 points, bench/RESULTS.md "RUC").
        hidden: MLP width (features) / ConvNet base width is hidden // 8 (images).
        device: "auto" | "cpu" | "cuda[:n]".
        random_state: int seed or None.

    Attributes after fit: ``labels_`` (N,): for clean samples the clean set's label (the
    anchored starting label, or the one both networks agreed on), for unclean ones the
    networks' (aligned) prediction; ``confidence_`` (N,) ensemble probability of the
    label (1.0 for corrected samples), ``clean_mask_`` (N,) final split (show ~clean first in
    review), ``initial_clean_mask_``, ``initial_labels_``, ``probabilities_`` (N, k) with
    columns ordered as ``classes_``, ``n_clusters_``, ``history_``, ``kept_start_``,
    ``kept_reason_``, ``guard_`` (the check's scores; None when it did not run).
    With the start kept, ``labels_`` are the starting labels, ``confidence_`` and
    ``probabilities_`` their centroid probabilities, ``clean_mask_`` the initial split, and
    ``predict`` refuses (the networks do not give those labels).
    """

    param_choices = {"initial": INITIALS, "strategy": STRATEGIES, "balance": BALANCES, "input": INPUTS}

    def __init__(
        self,
        *,
        n_clusters: int | None = None,
        initial: str = "kmeans",
        initial_params: dict[str, Any] | None = None,
        strategy: str = "hybrid",
        tau: float = 0.5,
        k_neighbors: int = 10,
        grow_tau: float = 0.5,
        max_clean: float = 0.9,
        min_clean: float = 0.3,
        init_clean: float = 0.5,
        epochs: int = 30,
        warmup: int = 5,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        smoothing: float = 0.1,
        temperature: float = 0.5,
        mixup_alpha: float = 0.75,
        lambda_u: float = 25.0,
        balance: str = "start",
        sinkhorn_iters: int = 1,
        guard: bool = True,
        input: str = "auto",
        hidden: int = 256,
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.initial = initial
        self.initial_params = initial_params
        self.strategy = strategy
        self.tau = tau
        self.k_neighbors = k_neighbors
        self.grow_tau = grow_tau
        self.max_clean = max_clean
        self.min_clean = min_clean
        self.init_clean = init_clean
        self.epochs = epochs
        self.warmup = warmup
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.smoothing = smoothing
        self.temperature = temperature
        self.mixup_alpha = mixup_alpha
        self.lambda_u = lambda_u
        self.balance = balance
        self.sinkhorn_iters = sinkhorn_iters
        self.guard = guard
        self.input = input
        self.hidden = hidden
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        initial_labels: np.ndarray | None = None,
        embedding: np.ndarray | None = None,
        fixed_labels: np.ndarray | None = None,
        eval_labels: np.ndarray | None = None,
        callback: Callback | None = None,
    ) -> RUC:
        """Refine ``initial_labels`` (or the labels of ``initial`` run on X / the embedding).

        X: (N, D) features or (N, [C,] H, W) images. initial_labels: (N,) int from any
        clustering. embedding: (N, D') for the metric selector (default: X, flattened).
        fixed_labels: (N,) int, -1 = not corrected; others are a person's labels: always clean,
        always the target. eval_labels: ground truth, used only to score ``history_``.
        callback(record) returning False stops, keeping the last finished epoch's result.
        """
        kind, Xt = self._validate_params_and_x(X)
        n = len(Xt)
        emb = Xt.reshape(n, -1).numpy() if embedding is None else np.asarray(embedding, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != n:
            raise ParameterError(f"embedding must be (N={n}, D), got shape {emb.shape}")
        if not np.isfinite(emb).all():
            raise ParameterError("embedding contains NaN or infinite values; clean or re-extract the features")
        # the guard judges in the embedding; only fair when the networks train on that same space
        same_view = embedding is None or (kind == "features" and tuple(Xt.shape) == emb.shape
                                          and np.array_equal(Xt.numpy(), emb))
        fixed_raw = None if fixed_labels is None else sel._check_labels(fixed_labels, n, "fixed_labels")
        if eval_labels is not None:
            eval_labels = sel._check_labels(eval_labels, n, "eval_labels")

        gen = torch.Generator(device="cpu")
        if self.random_state is None:
            gen.seed()
        else:
            gen.manual_seed(int(self.random_state))
        rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=gen)))

        if initial_labels is None:
            initial_labels = self._run_initial(emb, gen)
        init_raw = sel._check_labels(initial_labels, n, "initial_labels")
        classes, init, fixed_ids = self._encode_ids(init_raw, fixed_raw)
        k = len(classes)
        fixed = fixed_ids >= 0
        labels0 = np.where(fixed, fixed_ids, init)

        clean0, neighbors = self._initial_split(emb, labels0, k, fixed_ids)

        dev = resolve_device(self.device)
        if dev.type == "cpu":
            set_cpu_threads()
        if kind == "features":   # standardise so the augmentation noise has one scale everywhere
            self._mean, self._std = Xt.mean(0, keepdim=True), Xt.std(0, keepdim=True).clamp_min(1e-6)
            Xt = (Xt - self._mean) / self._std
        Xin, weak, strong = _prepare_inputs(kind, Xt)

        def new_nets() -> list[torch.nn.Module]:
            with torch.random.fork_rng(devices=[]):
                # network init uses the global RNG: seed it from our generator without disturbing the caller
                torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
                made = [_make_net(kind, Xin, k, self.hidden).to(dev) for _ in range(2)]
            if dev.type == "cuda" and kind == "images":
                made = [m.to(memory_format=torch.channels_last) for m in made]
            return made

        spec = TrainSpec(
            strategy=self.strategy, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            weight_decay=self.weight_decay, smoothing=self.smoothing, temperature=self.temperature,
            mixup_alpha=self.mixup_alpha, lambda_u=self.lambda_u, grow_tau=self.grow_tau,
            warmup=self.warmup, max_clean=self.max_clean, balance=self.balance,
            sinkhorn_iters=self.sinkhorn_iters,
        )
        self.history_ = []
        run = {"offset": 0, "stopped": False}   # epochs before this training phase; callback said stop

        def on_epoch(epoch: int, st: State, loss: float, seconds: float) -> bool:
            self._set_result(st, classes, fixed)
            rec: dict[str, Any] = {
                "epoch": run["offset"] + epoch, "loss": float(loss), "clean_size": int(st.clean.sum()),
                "clean_fraction": float(st.clean.mean()), "seconds": float(seconds),
            }
            if eval_labels is not None:   # scoring only: nothing below feeds back into training
                rec["clean_precision"] = clean_precision(self.labels_, st.clean, eval_labels)
                try:
                    rec.update(history_scores(self.labels_, eval_labels))
                except ImportError:   # core.metrics not installed yet: ACC alone
                    rec["acc"] = clean_precision(self.labels_, np.ones(n, bool), eval_labels)
            self.history_.append(rec)
            run["stopped"] = callback is not None and callback(rec) is False
            return not run["stopped"]

        def train_from(labels: np.ndarray, clean: np.ndarray, graph: np.ndarray | None) -> list[torch.nn.Module]:
            """One training phase, fresh networks, from these labels and clean set."""
            start = State(labels=labels, clean=clean, probs=np.eye(k, dtype=np.float32)[labels])
            self._set_result(start, classes, fixed)
            nets = new_nets()
            train(Xin, start, fixed, nets, weak, strong, spec, graph, gen, rng, dev, on_epoch)
            return nets

        self.initial_labels_ = classes[labels0]
        self.initial_clean_mask_ = clean0
        self.classes_ = classes
        t0 = time.perf_counter()
        nets = train_from(labels0, clean0, neighbors)
        self.kept_start_, self.kept_reason_, self.guard_ = False, None, None
        if self.guard and same_view and not run["stopped"] and not fixed.any():
            self._guard(emb, labels0, clean0, classes, eval_labels, dev)
        self.fit_seconds_ = time.perf_counter() - t0
        self.networks_ = nets
        self.input_kind_ = kind
        self.device_ = dev
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Cluster ids for new samples of the same kind as the training data (ensemble argmax)."""
        if getattr(self, "kept_start_", False):
            raise ParameterError("RUC kept its starting clustering (its own labels were worse), so its networks "
                                 "do not give these labels: assign new samples with the clusterer that made the start")
        kind, Xt = self._validate_params_and_x(X)
        if kind != self.input_kind_:
            raise ParameterError(f"the model was trained on {self.input_kind_}, got {kind}")
        Xin = (Xt - self._mean) / self._std if kind == "features" else Xt
        probs = predict_probs(self.networks_, Xin, max(256, self.batch_size), self.device_).numpy()
        return self.classes_[probs.argmax(1)]

    # ------------------------------------------------------------------ helpers
    def _guard(self, emb: np.ndarray, labels0: np.ndarray, clean0: np.ndarray, classes: np.ndarray,
               eval_labels: np.ndarray | None, dev: torch.device) -> None:
        """Keep the start (labels, its centroid confidence, the initial split) when RUC's result
        is worse than it by the label-free check; a last history record says what was compared."""
        from core.cluster import dac_guard

        verdict = dac_guard.compare(emb, labels0, np.searchsorted(classes, self.labels_), device=dev)
        self.guard_ = record = verdict.record()
        if not verdict.keep_start:
            return
        probs = sel.centroid_probs(emb, labels0, len(classes))
        self.kept_start_ = True
        self.kept_reason_ = record["message"] = verdict.message("RUC", "the clustering it started from")
        self.labels_ = classes[labels0].astype(np.int64)
        self.confidence_ = probs[np.arange(len(labels0)), labels0].astype(np.float64)
        self.probabilities_ = probs
        self.clean_mask_ = clean0.copy()
        if eval_labels is not None:
            record.update(history_scores(self.labels_, eval_labels))
        self.history_.append(record)

    def _validate_params_and_x(self, X: Any) -> tuple[str, torch.Tensor]:
        """Every check in one place. Returns (kind, X as a CPU float tensor)."""
        if self.strategy not in STRATEGIES:
            raise ParameterError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        if self.balance not in BALANCES:
            raise ParameterError(f"unknown balance {self.balance!r}; choose one of: {', '.join(BALANCES)}")
        if self.input not in INPUTS:
            raise ParameterError(f"unknown input {self.input!r}; choose one of: {', '.join(INPUTS)}")
        if self.initial not in INITIALS:
            raise ParameterError(
                f"unknown initial clusterer {self.initial!r}; choose one of: {', '.join(INITIALS)}")
        for name in ("tau", "grow_tau", "max_clean"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ParameterError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.min_clean <= self.init_clean <= 1.0:
            raise ParameterError(
                f"need 0 <= min_clean <= init_clean <= 1, got min_clean={self.min_clean}, init_clean={self.init_clean}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ParameterError(f"smoothing must be in [0, 1), got {self.smoothing}")
        for name in ("epochs", "batch_size", "k_neighbors", "hidden", "sinkhorn_iters"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.warmup <= self.epochs:
            raise ParameterError(f"warmup must be between 0 and epochs ({self.epochs}), got {self.warmup}: "
                                 f"lower warmup or raise epochs")
        if self.lr <= 0 or self.temperature <= 0 or self.mixup_alpha <= 0 or self.lambda_u < 0:
            raise ParameterError("lr, temperature and mixup_alpha must be positive, lambda_u non-negative")
        if self.n_clusters is not None and self.n_clusters < 2:
            raise ParameterError(f"n_clusters must be at least 2, got {self.n_clusters}")
        if not isinstance(self.guard, (bool, np.bool_)):
            raise ParameterError(f"guard must be true or false, got {self.guard!r}")
        arr = X.detach().cpu() if isinstance(X, torch.Tensor) else input_tensor(np.asarray(X))
        if arr.ndim not in (2, 3, 4) or len(arr) < 2:
            raise ParameterError(
                f"X must be (N, D) features or (N, [C,] H, W) images with N >= 2, got shape {tuple(arr.shape)}")
        kind = {"auto": "features" if arr.ndim == 2 else "images", "pixels": "features"}.get(self.input, self.input)
        if kind == "features" and arr.ndim != 2:
            raise ParameterError(f"input={self.input!r} needs X of shape (N, D), got {tuple(arr.shape)}")
        if kind == "images":
            if arr.ndim == 2:
                raise ParameterError("input='images' needs X of shape (N, H, W) or (N, C, H, W)")
            if arr.ndim == 3:
                arr = arr[:, None]
            if arr.shape[1] not in (1, 3):
                raise ParameterError(
                    f"images need 1 or 3 channels first (N, C, H, W), got shape {tuple(arr.shape)}")
            if min(arr.shape[2:]) < 8:
                raise ParameterError(f"images must be at least 8 px, got {tuple(arr.shape[2:])}; upsample them")
            if arr.dtype == torch.uint8:
                return kind, arr.float() / 255.0
        arr = arr.float()
        if not torch.isfinite(arr).all():
            raise ParameterError("X contains NaN or infinite values; clean or re-extract the features")
        if kind == "images" and (arr.min() < 0 or arr.max() > 1):
            raise ParameterError("float images must be in [0, 1]; divide uint8 pixels by 255")
        return kind, arr.contiguous()

    def _run_initial(self, emb: np.ndarray, gen: torch.Generator) -> np.ndarray:
        if self.n_clusters is None:
            raise ParameterError("give initial_labels, or n_clusters so the initial clustering can run")
        from core.cluster.registry import make_clusterer

        params = {"n_clusters": self.n_clusters,
                  "random_state": int(torch.randint(2**31 - 1, (1,), generator=gen))}
        params.update(self.initial_params or {})
        return make_clusterer(self.initial, **params).fit(emb).labels_

    def _encode_ids(self, init: np.ndarray, fixed: np.ndarray | None):
        """Map the cluster ids in use to 0..k-1 (empty ids are skipped). Returns
        (classes (k,), init (N,), fixed (N,) with -1 = not corrected)."""
        if init.min() < 0:
            raise ParameterError("initial_labels must be cluster ids >= 0 (found a negative id)")
        fixed = np.full_like(init, -1) if fixed is None else fixed
        used = np.concatenate([init, fixed[fixed >= 0]])
        if self.n_clusters is not None:
            if used.max() >= self.n_clusters:
                raise ParameterError(
                    f"labels use cluster id {used.max()} but n_clusters={self.n_clusters}; "
                    "raise n_clusters or leave it None")
            classes = np.arange(self.n_clusters)
        else:
            classes = np.unique(used)
        if len(classes) < 2:
            raise ParameterError("the initial labels hold a single cluster; RUC needs at least 2")
        lookup = np.full(classes.max() + 1, -1)
        lookup[classes] = np.arange(len(classes))
        enc_fixed = np.where(fixed >= 0, lookup[np.maximum(fixed, 0)], -1)
        return classes, lookup[init], enc_fixed

    def _initial_split(self, emb, labels, k, fixed_ids):
        n = len(labels)
        probs = sel.centroid_probs(emb, labels, k)
        neighbors = None
        fx = fixed_ids if (fixed_ids >= 0).any() else None
        if self.strategy == "confidence":
            mask = sel.select_confidence(probs, labels, self.tau, fixed_labels=fx)
        else:
            neighbors = sel.knn_indices(emb, self.k_neighbors)
            mask = sel.knn_vote_mask(neighbors, labels)
            if self.strategy == "hybrid":
                mask &= sel.select_confidence(probs, labels, self.tau)
            mask = mask | (fixed_ids >= 0)
        own = probs[np.arange(n), labels]
        # class-balanced: each cluster contributes its best-ranked members, at least min_clean
        # (a mixed cluster keeps its purest part) and at most init_clean of it. Ranking: the
        # neighbours' agreement for "metric"; centroid confidence for "confidence" and "hybrid"
        # (the vote already filtered; in a good embedding such as UMAP nearly every sample's
        # neighbours agree, so agreement cannot tell a cluster's core from its fringe)
        if self.strategy == "metric":
            score = sel.knn_agreement(neighbors, labels) + 0.01 * own
        else:
            score = own
        fx = fixed_ids >= 0
        mask = sel.cap_clusters(mask & ~fx, labels, score, self.init_clean)
        mask = sel.fill_clusters(mask, labels, score, self.min_clean) | fx
        return sel.keep_every_cluster(mask, labels, own), neighbors

    def _set_result(self, st: State, classes: np.ndarray, fixed: np.ndarray) -> None:
        # the clean set's labels are the trusted ones (anchored starting labels, or labels both
        # networks agreed on): report them; the networks relabel only the unclean samples
        pred = np.where(fixed | st.clean, st.labels, st.probs.argmax(1))
        probs = st.probs
        self.labels_ = classes[pred].astype(np.int64)
        self.confidence_ = np.where(fixed, 1.0, probs[np.arange(len(pred)), pred]).astype(np.float64)
        self.clean_mask_ = st.clean.copy()
        self.probabilities_ = probs
        self.classes_ = classes
        self.n_clusters_ = len(classes)


def clean_precision(labels: np.ndarray, clean: np.ndarray, truth: np.ndarray) -> float:
    """Scoring only: fraction of clean samples whose label matches the truth after Hungarian
    matching of label ids to true classes (matching computed on all samples)."""
    from scipy.optimize import linear_sum_assignment

    _, li = np.unique(labels, return_inverse=True)
    _, ti = np.unique(truth, return_inverse=True)
    conf = np.zeros((li.max() + 1, ti.max() + 1), dtype=np.int64)
    np.add.at(conf, (li, ti), 1)
    rows, cols = linear_sum_assignment(-conf)
    mapping = np.full(conf.shape[0], -1)
    mapping[rows] = cols
    if not clean.any():
        return float("nan")
    return float((mapping[li[clean]] == ti[clean]).mean())


# ---------------------------------------------------------------------- inputs and networks
def _prepare_inputs(kind: str, X: torch.Tensor):
    """Returns (inputs, weak, strong) where weak/strong(x, generator) augment a batch.
    Features must already be standardised."""
    if kind == "images":
        from core.augment import strong_augment, weak_augment

        # mirroring is not label-preserving for digits or text; only colour images get it
        hflip = X.shape[1] == 3
        return (X, lambda x, g: weak_augment(x, generator=g, hflip=hflip),
                lambda x, g: strong_augment(x, generator=g, hflip=hflip))
    return X, _feature_aug(0.1, 0.1), _feature_aug(0.2, 0.3)


def _feature_aug(sigma: float, drop: float):
    def aug(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=g).to(x.device)
        keep = (torch.rand(x.shape, generator=g) >= drop).to(x.device)
        return (x + sigma * noise) * keep / (1 - drop)
    return aug


def _make_net(kind: str, X: torch.Tensor, k: int, hidden: int) -> torch.nn.Module:
    if kind == "features":
        from core.nn.heads import MLPHead

        return MLPHead(X.shape[1], k, hidden=hidden)
    from core.nn.small_convnet import make_image_classifier

    return make_image_classifier(X.shape[1], min(X.shape[2:]), k, width=max(8, hidden // 8))
