"""k-means in torch, scikit-learn style, CPU or GPU.

Why it is fast on a CPU: the restarts (``n_init``) run *together*. One Lloyd iteration of a
thin k-means (k ≪ D) is bound by reading X from memory, not by arithmetic, so the distances of
every restart come from one matmul ``X @ C_all.T`` (C_all: all restarts' centres stacked).
Centroid sums are kept in float64 and updated only for the points that changed cluster (after
a few iterations well under 1%), so the update costs almost nothing. k-means++ seeding is
batched the same way (all restarts' candidate centres in one matmul). Few large ops, not many
small ones: each op is one parallel region, and small ones stall on a shared CPU.

Metrics: ``euclidean``; ``cosine`` (spherical k-means: rows and centroids on the unit sphere);
``mahalanobis`` (whiten with a Ledoit–Wolf shrinkage covariance, then euclidean). ``inertia_``
and ``transform`` are measured in that metric's space; ``cluster_centers_`` are in the input
space (cosine: the unit mean direction of each cluster).

Large N (``algorithm="auto"`` above :data:`SAMPLED_ABOVE` rows): the restarts and k-means++
run on a seeded random sample of :func:`sample_size` rows (Lloyd to convergence there), and
the best sample centres start one Lloyd run on all rows. Measured at 1M x 64 against scikit-learn's
MiniBatchKMeans and faiss (bench/bench_scale.py, bench/RESULTS.md "Scale"): lower inertia on
all points than MiniBatchKMeans in less time. X may be a read-only memory map: nothing copies it
(euclidean). At and below the threshold nothing changed: the same labels as before.

Progress: ``fit(..., progress=fn)`` calls ``fn(done, total, what)`` after each pass over the
data (``done``/``total`` passes, ``what`` a line with the rate in points/s); returning False
stops, like ``callback``. Every ``callback`` record carries ``progress`` (0..1) too.

``confidence_`` is the relative margin between the nearest and the second-nearest centroid,
``1 - d1 / d2`` with d the (metric) distances: 1 at a centroid, 0 on the boundary between two
clusters. It is scale-free and needs no temperature, unlike a softmax over distances.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from core.cluster.base import BaseClusterer, Callback, history_scores
from core.cluster.inputs import input_tensor
from core.device import resolve_device
from core.errors import ParameterError

METRICS = ("euclidean", "cosine", "mahalanobis")
INITS = ("k-means++", "random")
ALGORITHMS = ("auto", "lloyd", "sampled")
SAMPLED_ABOVE = 200_000      # auto: more rows than this seed the restarts on a sample
SAMPLE_MIN, SAMPLE_PER_CLUSTER = 50_000, 500
SAMPLED_INERTIA_TOL = 1e-4   # sampled: stop a restart when a pass gains less than 0.01% inertia
Progress = Callable[[int, int, str], "bool | None"]   # (done, total, what) -> False stops


def sample_size(n: int, k: int) -> int:
    """Rows the sampled algorithm seeds on: 50,000 or 500 per cluster, whichever is more."""
    return min(n, max(SAMPLE_MIN, SAMPLE_PER_CLUSTER * k))
_CHUNK_MIN_BYTES = 32 << 20  # float32 chunk: max(this, an eighth of X); float64 copies are twice that


@dataclass
class _Space:
    """The affine map from input space to the space where k-means runs."""

    metric: str
    mean: torch.Tensor | None = None       # mahalanobis: (D,)
    whiten: torch.Tensor | None = None     # mahalanobis: (D, D), z = (x - mean) @ whiten
    unwhiten: torch.Tensor | None = None   # mahalanobis: (D, D), x = z @ unwhiten + mean


class KMeans(BaseClusterer):
    """Lloyd's k-means with k-means++ seeding and batched restarts.

    Parameters (keyword-only)
    -------------------------
    n_clusters: k (>= 2).
    metric: "euclidean" | "cosine" | "mahalanobis".
    n_init: restarts; the lowest inertia wins. Default 10: restarts run in the same passes over
        the data (10 cost 2.3x what 3 cost on Fashion-MNIST's 70,000 x 784 pixels, and still 0.36x
        scikit-learn's time at equal n_init), and 3 were too few: on one of the pipeline's
        Fashion-MNIST UMAP maps all 3 stopped in a poor local minimum (inertia 6029 vs 5949) whose
        partition RUC could not repair (bench/RESULTS.md, "k-means restarts"). scikit-learn's "auto"
        uses 1 for k-means++.
    max_iter: Lloyd iterations per restart.
    tol: stop when the squared centre shift is <= tol * mean feature variance (scikit-learn's
        rule), or when no label changed.
    init: "k-means++" (greedy, 2 + ln k local trials), "random" (k distinct rows) or an array
        (k, D) of starting centres in input space (then n_init is 1).
    chunk_size: rows per chunk; None = automatic (bounded memory).
    algorithm: "auto" (lloyd up to 200,000 rows, sampled above) | "lloyd" (every restart on all
        rows) | "sampled" (restarts on a seeded sample of max(50,000, 500 k) rows, then one
        Lloyd run on all rows from the best sample centres; both also stop when a pass lowers
        the inertia by less than 0.01%).
    device: "auto" | "cpu" | "cuda[:n]".
    random_state: int seed or None. One seed -> one torch.Generator for every random choice.
    """

    param_choices = {"metric": METRICS, "init": INITS, "algorithm": ALGORITHMS}

    def __init__(
        self,
        *,
        n_clusters: int = 8,
        metric: str = "euclidean",
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        init: str | np.ndarray = "k-means++",
        chunk_size: int | None = None,
        algorithm: str = "auto",
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.chunk_size = chunk_size
        self.algorithm = algorithm
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        eval_labels: np.ndarray | None = None,
        callback: Callback | None = None,
        progress: Progress | None = None,
    ) -> KMeans:
        X_t, init_centers = self._validate(X)
        dev = resolve_device(self.device)
        gen = torch.Generator(device="cpu")
        if self.random_state is None:
            gen.seed()
        else:
            gen.manual_seed(int(self.random_state))
        n = X_t.shape[0]
        sampled = init_centers is None and (
            self.algorithm == "sampled" or (self.algorithm == "auto" and n > SAMPLED_ABOVE))
        with torch.no_grad():
            space = _fit_space(X_t, self.metric, dev)
            Z = _to_space(X_t, space, dev, self._rows(*X_t.shape))
            del X_t  # only the metric-space copy is needed from here on
            if not sampled:
                self._fit_space(Z, space, dev, gen, init_centers, eval_labels, callback, progress=progress)
                self.sample_size_ = None
                return self
            m = sample_size(n, int(self.n_clusters))
            idx = torch.sort(torch.randperm(n, generator=gen)[:m]).values
            Zs = Z[idx.to(Z.device)]
            stage = _Stage(callback, progress, "sample", 0.0, 0.3, m)
            # the sample lives in the metric space already: cluster it there (euclidean / cosine)
            sub = KMeans(n_clusters=self.n_clusters, metric="cosine" if self.metric == "cosine" else "euclidean",
                         n_init=self.n_init, max_iter=self.max_iter, tol=self.tol, init=self.init,
                         chunk_size=self.chunk_size, algorithm="lloyd", device=str(dev),
                         random_state=self.random_state)   # its draws come from ``gen`` below
            sub._fit_space(Zs, _Space(sub.metric), dev, gen, None, None, stage.record, progress=stage.passes,
                           inertia_tol=SAMPLED_INERTIA_TOL)
            del Zs
            if stage.stopped:   # stopped while seeding: keep the sample's centres, label every row
                max_iter = 0
            else:
                max_iter = int(self.max_iter)
            start = sub._centers_z.to(dev).unsqueeze(0)
            full = _Stage(callback, progress, "all", 0.3, 1.0, n)
            self._fit_space(Z, space, dev, gen, None, eval_labels, full.record, progress=full.passes,
                            start=start, max_iter=max_iter, inertia_tol=SAMPLED_INERTIA_TOL)
            self.sample_size_ = m
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centroid for each row of X."""
        d = self._distances(X)
        return d.argmin(1).numpy().astype(np.int64)

    def transform(self, X: Any) -> np.ndarray:
        """(N, k) distances to each centroid, in the metric's space."""
        return self._distances(X).clamp_min_(0).sqrt_().numpy()

    # ------------------------------------------------------------------ validation
    def _validate(self, X: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every check in one place; returns X as a float32 CPU tensor (no copy if possible)."""
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ParameterError(
                f"n_clusters must be an integer >= 2 (got {k!r}): one cluster holds everything and says nothing"
            )
        if self.metric not in METRICS:
            raise ParameterError(f"unknown metric {self.metric!r}; choose one of: {', '.join(METRICS)}")
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise ParameterError(f"n_init must be an integer >= 1 (got {self.n_init!r})")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ParameterError(f"max_iter must be an integer >= 1 (got {self.max_iter!r})")
        if not isinstance(self.tol, (int, float)) or not self.tol >= 0:
            raise ParameterError(f"tol must be a number >= 0 (got {self.tol!r})")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, (int, np.integer)) or self.chunk_size < 1):
            raise ParameterError(f"chunk_size must be None (automatic) or an integer >= 1 (got {self.chunk_size!r})")
        if self.random_state is not None and not isinstance(self.random_state, (int, np.integer)):
            raise ParameterError(f"random_state must be an integer seed or None (got {self.random_state!r})")
        if self.algorithm not in ALGORITHMS:
            raise ParameterError(f"unknown algorithm {self.algorithm!r}; choose one of: {', '.join(ALGORITHMS)}")
        if isinstance(self.init, str) and self.init not in INITS:
            raise ParameterError(
                f"unknown init {self.init!r}; choose one of: {', '.join(INITS)} or an array of k starting centres"
            )
        X_t = _as_matrix(X, "X")
        n, d = X_t.shape
        if k > n:
            raise ParameterError(f"k={k} is larger than the number of samples ({n}): choose k <= {n}")
        _check_finite(X_t, "X")
        if self.metric == "cosine":
            norms = torch.linalg.vector_norm(X_t, dim=1)
            zero = torch.nonzero(norms == 0).flatten()
            if len(zero):
                raise ParameterError(
                    f"metric='cosine' needs non-zero rows, but {len(zero)} rows are all zeros "
                    f"(first rows: {zero[:5].tolist()}); remove them or use metric='euclidean'"
                )
        distinct = _count_distinct_rows(X_t, k)
        if distinct < k:
            raise ParameterError(
                f"only {distinct} distinct points among {n} samples (duplicate images?) but k={k}: "
                f"choose k <= {distinct} or remove the duplicates"
            )
        init_centers = None
        if not isinstance(self.init, str):
            init_centers = _as_matrix(self.init, "init")
            if tuple(init_centers.shape) != (k, d):
                raise ParameterError(
                    f"init array must have shape (n_clusters, n_features) = ({k}, {d}); got {tuple(init_centers.shape)}"
                )
            _check_finite(init_centers, "init")
        return X_t, init_centers

    # ------------------------------------------------------------------ the algorithm
    def _rows(self, n_samples: int, n_features: int) -> int:
        """Rows per chunk: a float32 chunk is at most max(32 MB, X/8) (float64 copies twice
        that), so the peak stays near X + its metric-space copy. Few large chunks, not many small ones: each torch op is
        one parallel region, and small ones stall on a shared CPU (measured 3x slower)."""
        if self.chunk_size is not None:
            return int(self.chunk_size)
        budget = max(_CHUNK_MIN_BYTES, n_samples * n_features // 2)  # = an eighth of float32 X
        return max(256, budget // (4 * max(n_features, int(self.n_clusters))))

    def _fit_space(
        self,
        Z: torch.Tensor,
        space: _Space,
        dev: torch.device,
        gen: torch.Generator,
        init_centers: torch.Tensor | None,
        eval_labels: np.ndarray | None,
        callback: Callback | None,
        *,
        progress: Progress | None = None,
        start: torch.Tensor | None = None,
        max_iter: int | None = None,
        inertia_tol: float | None = None,
    ) -> None:
        """Lloyd with Hamerly bounds on Z (metric space). ``start`` (R, k, D): starting centres
        already in Z's space; ``max_iter`` overrides the parameter (0: label with the start);
        ``inertia_tol``: a restart also stops once an iteration lowers its inertia by less than
        this fraction (the sampled algorithm's rule: Lloyd's long tail on a million rows)."""
        n, d = Z.shape
        k = int(self.n_clusters)
        R = 1 if init_centers is not None or start is not None else int(self.n_init)
        max_iter = int(self.max_iter) if max_iter is None else max_iter
        crows = self._rows(n, d)
        x_sq = _row_sq_norms(Z, crows)
        # scikit-learn's tolerance: relative to the mean per-feature variance
        tol = float(self.tol) * _mean_variance(Z, crows)
        t0 = time.perf_counter()

        if start is not None:
            C = start.clone()
        elif init_centers is not None:
            C = _to_space(init_centers, space, dev, crows).unsqueeze(0)
        elif self.init == "random":
            idx = torch.stack([torch.randperm(n, generator=gen)[:k] for _ in range(R)])
            C = Z[idx.to(dev).flatten()].view(R, k, d)
        else:
            C = _kmeans_plusplus(Z, x_sq, k, R, gen)
        if self.metric == "cosine":
            C = _unit_rows(C)

        # per-restart state is (R, N) so that each restart's row is contiguous
        labels = torch.full((R, n), -1, dtype=torch.int64, device=dev)
        # Hamerly bounds per restart: upper bound on the distance to the own centre, lower bound
        # on the distance to any other; a point whose bounds do not cross cannot change cluster.
        upper = torch.full((R, n), math.inf, device=dev)
        lower = torch.zeros(R, n, device=dev)
        # float64 centroid sums and counts per restart, updated incrementally (only moved points)
        sums = torch.zeros(R, k, d, dtype=torch.float64, device=dev)
        counts = torch.zeros(R, k, dtype=torch.int64, device=dev)
        half_gap = torch.zeros(R, k, device=dev)
        histories: list[list[dict[str, Any]]] = [[] for _ in range(R)]
        n_iter = [0] * R
        active = list(range(R))
        x_sq_total = float(x_sq.sum(dtype=torch.float64))
        stop = False
        for it in range(1, max_iter + 1):
            still = []
            for r in active:
                prev = labels[r].clone()
                moved = _hamerly_assign(Z, x_sq, C[r], labels[r], upper[r], lower[r], half_gap[r], crows)
                _update_sums(Z, labels[r], prev, sums[r], counts[r], crows)
                inertia = _inertia(x_sq_total, C[r], sums[r], counts[r])
                c_new = (sums[r] / counts[r].clamp_min(1)[:, None]).float()
                empty = torch.nonzero(counts[r] == 0).flatten()
                if len(empty):  # empty-cluster repair: re-seed from the farthest points
                    c_new[empty] = Z[torch.topk(upper[r], len(empty)).indices]
                if self.metric == "cosine":
                    c_new = _unit_rows(c_new)
                delta = torch.linalg.vector_norm(c_new - C[r], dim=1)
                C[r] = c_new
                _move_bounds(delta, labels[r], upper[r], lower[r])
                half_gap[r] = _half_gaps(c_new)
                before = histories[r][-1]["inertia"] if histories[r] else math.inf
                histories[r].append({"iteration": it, "inertia": inertia, "moved": moved / n})
                n_iter[r] = it
                flat = inertia_tol is not None and before - inertia <= inertia_tol * inertia
                if not (moved == 0 or float((delta ** 2).sum()) <= tol or flat):
                    still.append(r)
            frac = it / max_iter
            rate = n * it / max(time.perf_counter() - t0, 1e-9)   # rows assigned per second, per restart
            if callback is not None:
                best = min(active, key=lambda r: histories[r][-1]["inertia"])
                rec = dict(histories[best][-1], restart=best, progress=frac, points_per_s=rate)
                if callback(rec) is False:
                    stop = True
            if progress is not None:
                what = (f"k-means iteration {it} (at most {max_iter}) on {n:,} points, {len(active)} restart"
                        f"{'s' if len(active) > 1 else ''} left, {rate:,.0f} points/s")
                if progress(it, max_iter, what) is False:
                    stop = True
            active = still
            if not active or stop:
                break

        # final E-step (labels consistent with the final centres), then keep the best restart
        finals = []
        for r in range(R):
            prev = labels[r].clone()
            _hamerly_assign(Z, x_sq, C[r], labels[r], upper[r], lower[r], half_gap[r], crows)
            _update_sums(Z, labels[r], prev, sums[r], counts[r], crows)
            finals.append(_inertia(x_sq_total, C[r], sums[r], counts[r]))
        best = int(np.argmin(finals))
        centers = C[best].contiguous()
        lab, d1, d2 = _assign_exact(Z, centers, crows)
        self._space = space
        self._centers_z = centers.cpu()
        self.labels_ = lab.cpu().numpy().astype(np.int64)
        self.inertia_ = float(d1.sum(dtype=torch.float64))
        d1s, d2s = d1.clamp_min(0).sqrt(), d2.clamp_min(0).sqrt()
        conf = torch.where(d2s > 0, 1 - d1s / d2s.clamp_min(1e-30), torch.zeros_like(d1s))
        self.confidence_ = conf.clamp_(0, 1).cpu().numpy().astype(np.float32)
        self.cluster_centers_ = _from_space(centers, space).cpu().numpy().astype(np.float32)
        self.n_iter_ = n_iter[best]
        self.history_ = histories[best]
        if eval_labels is not None and self.history_:
            # scored once, on the final labels: per-iteration scoring tripled fit time (display only)
            self.history_[-1].update(history_scores(self.labels_, eval_labels))
        self.n_clusters_ = k
        self.n_features_in_ = d

    def _distances(self, X: Any) -> torch.Tensor:
        """(N, k) squared distances (CPU) from X to the centroids, in the metric's space."""
        check_is_fitted(self, "cluster_centers_")
        X_t = _as_matrix(X, "X")
        if X_t.shape[1] != self.n_features_in_:
            raise ParameterError(
                f"X has {X_t.shape[1]} features but the model was fitted on {self.n_features_in_}"
            )
        _check_finite(X_t, "X")
        with torch.no_grad():
            Z = _to_space(X_t, self._space, torch.device("cpu"), self._rows(*X_t.shape))
            C = self._centers_z
            x_sq = _row_sq_norms(Z, self._rows(*X_t.shape))
            return torch.addmm(x_sq[:, None], Z, C.T, alpha=-2).add_((C * C).sum(1))


class _Stage:
    """One part of a sampled fit (the sample, then all rows) seen by the caller's callback and
    progress as a share [lo, hi] of the whole; remembers whether the caller asked to stop."""

    def __init__(self, callback: Callback | None, progress: Progress | None, name: str,
                 lo: float, hi: float, rows: int) -> None:
        self.callback, self.progress, self.name = callback, progress, name
        self.lo, self.hi, self.rows = lo, hi, rows
        self.stopped = False

    def record(self, rec: dict[str, Any]) -> bool | None:
        if self.callback is None:
            return None
        rec = dict(rec, stage=self.name, progress=self.lo + (self.hi - self.lo) * float(rec.get("progress", 0.0)))
        if self.callback(rec) is False:
            self.stopped = True
            return False
        return None

    def passes(self, done: int, total: int, what: str) -> bool | None:
        if self.progress is None:
            return None
        scale = 1000
        at = int(scale * (self.lo + (self.hi - self.lo) * done / max(total, 1)))
        label = "seeding on a sample: " if self.name == "sample" else "all points: "
        if self.progress(at, scale, label + what) is False:
            self.stopped = True
            return False
        return None


# ---------------------------------------------------------------------- helpers (pure functions)
def _as_matrix(X: Any, name: str) -> torch.Tensor:
    """Array-like -> float32 2-D CPU tensor; shares memory with a float32 numpy array."""
    if isinstance(X, torch.Tensor):
        t = X.detach().to("cpu", torch.float32)
    else:
        try:
            arr = np.asarray(X)
            if arr.dtype != np.float32:
                arr = arr.astype(np.float32)
        except (TypeError, ValueError) as e:
            raise ParameterError(f"{name} must be a numeric array; it could not be read as numbers ({e})") from None
        t = input_tensor(np.ascontiguousarray(arr))
    if t.ndim != 2:
        hint = " Reshape a single feature with X.reshape(-1, 1)." if t.ndim == 1 else ""
        raise ParameterError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); got shape {tuple(t.shape)}.{hint}"
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ParameterError(f"{name} is empty (shape {tuple(t.shape)}): there is nothing to cluster")
    return t.contiguous()


def _check_finite(X: torch.Tensor, name: str) -> None:
    bad = torch.nonzero(~torch.isfinite(X).all(dim=1)).flatten()
    if len(bad):
        raise ParameterError(
            f"{name} has {len(bad)} rows with NaN or infinite values (first rows: {bad[:5].tolist()}); "
            "drop or impute those samples (e.g. re-extract their features) before clustering"
        )


def _count_distinct_rows(X: torch.Tensor, k: int) -> int:
    """Distinct rows, counted through a random float64 projection (one pass, no row sort).

    Two different rows project to the same value with probability zero.
    """
    g = torch.Generator().manual_seed(12345)
    v = torch.randn(X.shape[1], dtype=torch.float64, generator=g)
    step = max(1, (8 << 20) // (8 * X.shape[1]))
    proj = torch.cat([X[s:s + step].double() @ v for s in range(0, X.shape[0], step)])
    return len(np.unique(proj.numpy()))


def _row_sq_norms(Z: torch.Tensor, rows: int) -> torch.Tensor:
    return torch.cat([torch.linalg.vector_norm(Z[s:s + rows], dim=1) ** 2 for s in range(0, Z.shape[0], rows)])


def _mean_variance(Z: torch.Tensor, rows: int) -> float:
    """Mean per-feature variance, accumulated in float64 chunk by chunk (no N×D float64 copy)."""
    s = torch.zeros(Z.shape[1], dtype=torch.float64, device=Z.device)
    s2 = torch.zeros_like(s)
    for i in range(0, Z.shape[0], rows):
        c = Z[i:i + rows].double()
        s += c.sum(0)
        s2 += (c * c).sum(0)
    n = Z.shape[0]
    return float(((s2 - s * s / n) / n).clamp_min(0).mean())


def _unit_rows(C: torch.Tensor) -> torch.Tensor:
    return C / torch.linalg.vector_norm(C, dim=-1, keepdim=True).clamp_min(1e-12)


def _fit_space(X: torch.Tensor, metric: str, dev: torch.device) -> _Space:
    if metric != "mahalanobis":
        return _Space(metric)
    mean, W, W_inv = _ledoit_wolf_whitener(X)
    return _Space(metric, mean.to(dev), W.to(dev), W_inv.to(dev))


def _to_space(X: torch.Tensor, space: _Space, dev: torch.device, rows: int) -> torch.Tensor:
    """Input space -> metric space, chunk by chunk into one float32 array (at most 1x extra)."""
    if space.metric == "euclidean":
        return X.to(dev)
    out = torch.empty(X.shape, dtype=torch.float32, device=dev)
    for s in range(0, X.shape[0], rows):
        c = X[s:s + rows].to(dev)
        out[s:s + rows] = _unit_rows(c) if space.metric == "cosine" else (c - space.mean) @ space.whiten
    return out


def _from_space(C: torch.Tensor, space: _Space) -> torch.Tensor:
    if space.metric == "mahalanobis":
        return C @ space.unwhiten + space.mean
    return C


def _ledoit_wolf_whitener(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ledoit–Wolf shrinkage covariance (scikit-learn's formula), accumulated in float64 chunks.

    Returns (mean, W, W_inv) as float32 with (x - mean) @ W white and z @ W_inv + mean = x.
    """
    n, d = X.shape
    rows = max(1, (16 << 20) // (8 * d))
    mean = torch.zeros(d, dtype=torch.float64)
    for s in range(0, n, rows):
        mean += X[s:s + rows].double().sum(0)
    mean /= n
    S = torch.zeros(d, d, dtype=torch.float64)
    beta_ = 0.0
    for s in range(0, n, rows):
        c = X[s:s + rows].double() - mean
        S += c.T @ c
        beta_ += float(((c * c).sum(1) ** 2).sum())
    emp_trace = torch.diagonal(S) / n
    mu = float(emp_trace.sum()) / d
    delta_ = float((S ** 2).sum()) / n ** 2
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2 * mu * float(emp_trace.sum()) + d * mu ** 2) / d
    beta = min(beta, delta)
    shrink = 0.0 if beta == 0 else beta / delta
    cov = (1 - shrink) * S / n + shrink * mu * torch.eye(d, dtype=torch.float64)
    evals, evecs = torch.linalg.eigh(cov)
    # guard exactly singular data (constant features, shrinkage 0)
    evals = evals.clamp_min(max(float(evals.max()), 1e-30) * 1e-6)
    W = evecs / evals.sqrt()
    W_inv = (evecs * evals.sqrt()).T
    return mean.float(), W.float(), W_inv.float()


def _sq_dist(Z: torch.Tensor, x_sq: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """(N, m) squared distances; the addmm form avoids any N×D temporary."""
    return torch.addmm(x_sq[:, None], Z, C.T, alpha=-2).add_((C * C).sum(1)).clamp_min_(0)


def _kmeans_plusplus(Z: torch.Tensor, x_sq: torch.Tensor, k: int, R: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ (scikit-learn's: 2 + ln k local trials) for R restarts at once -> (R, k, D)."""
    n, d = Z.shape
    dev = Z.device
    T = 2 + int(math.log(k))
    ar = torch.arange(R, device=dev)
    chosen = torch.empty(R, k, dtype=torch.int64, device=dev)
    chosen[:, 0] = torch.randint(n, (R,), generator=gen).to(dev)
    closest = _sq_dist(Z, x_sq, Z[chosen[:, 0]])                      # (N, R)
    for c in range(1, k):
        pot = closest.sum(0, dtype=torch.float64)                      # (R,)
        u = torch.rand(R, T, generator=gen, dtype=torch.float64).to(dev) * pot[:, None]
        cums = torch.cumsum(closest.T.double(), dim=1)                # (R, N)
        cand = torch.searchsorted(cums, u).clamp_(max=n - 1)           # (R, T)
        dist = _sq_dist(Z, x_sq, Z[cand.flatten()]).view(n, R, T)
        torch.minimum(dist, closest[:, :, None], out=dist)
        best = dist.sum(0, dtype=torch.float64).argmin(1)              # (R,)
        chosen[:, c] = cand[ar, best]
        closest = dist[:, ar, best]
    return Z[chosen.flatten()].view(R, k, d).clone()


def _hamerly_assign(
    Z: torch.Tensor,
    x_sq: torch.Tensor,
    C: torch.Tensor,
    labels: torch.Tensor,
    upper: torch.Tensor,
    lower: torch.Tensor,
    half_gap: torch.Tensor,
    rows: int,
) -> int:
    """Reassign only the points whose bounds allow a change (Hamerly 2010); all in place.

    C (k, D); labels, upper, lower (N,) views. Returns how many labels changed.
    """
    need = torch.nonzero(upper > torch.maximum(lower, half_gap[labels.clamp_min(0)])).flatten()
    c_sq = (C * C).sum(1)
    moved = 0
    for s in range(0, len(need), rows):
        idx = need[s:s + rows]
        xs = x_sq[idx]
        dist = torch.addmm(xs[:, None] + c_sq[None, :], Z[idx], C.T, alpha=-2)
        two = torch.topk(dist, 2, dim=1, largest=False)
        new = two.indices[:, 0]
        moved += int((new != labels[idx]).sum())
        labels[idx] = new
        # float32 rounding of the expanded distance: widen the bounds by its size
        err = 1e-6 * (xs + c_sq.max())
        upper[idx] = (two.values[:, 0].clamp_min(0) + err).sqrt()
        lower[idx] = (two.values[:, 1] - err).clamp_min(0).sqrt()
    return moved


def _move_bounds(delta: torch.Tensor, labels: torch.Tensor, upper: torch.Tensor, lower: torch.Tensor) -> None:
    """After centres moved by delta (k,): own centre may be closer by delta[a], others by max delta."""
    upper += delta[labels]
    top = torch.topk(delta, 2).values
    far = int(torch.argmax(delta))
    lower -= torch.where(labels == far, top[1], top[0])
    lower.clamp_min_(0)


def _half_gaps(C: torch.Tensor) -> torch.Tensor:
    """Half the distance from each centre to its nearest other centre (Hamerly's second test)."""
    g = torch.cdist(C, C)
    g.fill_diagonal_(math.inf)
    return g.min(1).values / 2


def _inertia(x_sq_total: float, C: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor) -> float:
    """Σ||x - c_a||² = Σ||x||² - 2 Σ_c c·S_c + Σ_c n_c ||c||², from the float64 sums."""
    C64 = C.double()
    val = x_sq_total - 2 * float((C64 * sums).sum()) + float((counts * (C64 * C64).sum(1)).sum())
    return max(val, 0.0)


def _update_sums(
    Z: torch.Tensor, new: torch.Tensor, old: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor, rows: int
) -> None:
    """Bring centroid sums (k, D) float64 and counts (k,) in line with ``new`` labels, in place.

    After the first iterations few points move, so adding/removing only those is far cheaper
    than re-summing all N rows (float64 keeps the running sums exact enough).
    """
    changed = torch.nonzero(new != old).flatten()
    if len(changed) > len(new) // 4 or bool((old < 0).any()):   # many moved: re-sum everything
        sums.zero_()
        for s in range(0, Z.shape[0], rows):
            sums.index_add_(0, new[s:s + rows], Z[s:s + rows].double())
        counts.copy_(torch.bincount(new, minlength=counts.shape[0]))
        return
    if len(changed) == 0:
        return
    Zc = Z[changed].double()
    sums.index_add_(0, new[changed], Zc)
    sums.index_add_(0, old[changed], Zc, alpha=-1)
    counts += torch.bincount(new[changed], minlength=counts.shape[0])
    counts -= torch.bincount(old[changed], minlength=counts.shape[0])


def _assign_exact(Z: torch.Tensor, C: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels, exact squared distance to the nearest centre, and (expanded) to the second nearest."""
    n = Z.shape[0]
    c_sq = (C * C).sum(1)[None, :]
    lab = torch.empty(n, dtype=torch.int64, device=Z.device)
    d1 = torch.empty(n, dtype=torch.float32, device=Z.device)
    d2 = torch.empty(n, dtype=torch.float32, device=Z.device)
    for s in range(0, n, rows):
        Xc = Z[s:s + rows]
        x_sq = (Xc * Xc).sum(1, keepdim=True)
        dist = torch.addmm(c_sq, Xc, C.T, alpha=-2).add_(x_sq)
        two = torch.topk(dist, 2, dim=1, largest=False)
        lab[s:s + rows] = two.indices[:, 0]
        d1[s:s + rows] = ((Xc - C[two.indices[:, 0]]) ** 2).sum(1)    # exact: no cancellation
        d2[s:s + rows] = two.values[:, 1]
    return lab, d1, d2
